package eventstore

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAppendJSONMatchesEncodingJSON: the fields JSON of a row is written
// by hand; every number and string must come out as encoding/json writes
// it, so that rows written before and after read back the same.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	vals := []any{0.0, math.Copysign(0, -1), 1.0, -1.0, 22.0, 59598.0, 4294967295.0, 1e15 - 1, 1e15, -1e15, 1e20, 1e21, 1e-6, 1e-7,
		0.1, -2.5, 123456789.125, math.MaxInt64, math.MinInt64, math.SmallestNonzeroFloat64, math.MaxFloat64,
		"", "plain", `quo"te\back`, "<tag>&amp;", "tab\tnl\nnul\x00", "bad \xff utf8", "line\u2028sep\u2029", "héllo", true, false, nil}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		switch r.IntN(4) {
		case 0:
			vals = append(vals, float64(r.Int64N(1<<53)-1<<52))
		case 1:
			vals = append(vals, r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)))
		case 2:
			vals = append(vals, math.Trunc(r.NormFloat64()*math.Pow(10, float64(r.IntN(25)))))
		default:
			b := make([]byte, r.IntN(12))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			vals = append(vals, string(b))
		}
	}
	for _, v := range vals {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONValue(nil, v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("appendJSONValue(%#v) = %s, %v; encoding/json writes %s", v, got, err, want)
		}
	}
}

// TestFieldOrder: fieldLess orders names as string comparison does,
// names that share their first 8 bytes, shorter ones and NUL bytes
// included, so the fields JSON keeps its sorted keys.
func TestFieldOrder(t *testing.T) {
	names := []string{"", "a", "ab", "abc\x00", "abc", "abc\x00d", "log.syslog.msgid", "log.syslog.hostname",
		"log.sys", "log.syslo", "http.request.method", "http.response.body.bytes", "http.version",
		"user.name", "user_agent.original", "url.query", "\xff\xfe", "Z", "zz", "source.ip", "source.port"}
	r := rand.New(rand.NewPCG(1, 2))
	var rb rowBuilder
	for range 200 {
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		kvs := make([]fieldKV, len(names))
		refs := make([]fieldRef, len(names))
		for i, n := range names {
			slot, pre, at := rb.slotOf(n)
			kvs[i] = fieldKV{k: n, slot: slot, pre: pre, at: at}
			refs[i] = fieldRef{pre, i}
		}
		sortFields(kvs, refs)
		for i := 1; i < len(refs); i++ {
			if a, b := kvs[refs[i-1].i].k, kvs[refs[i].i].k; a >= b {
				t.Fatalf("sorted %q before %q", a, b)
			}
		}
	}
}

// TestSlotCacheChecksName: the remembered slots answer as slotOf does,
// for more names than the cache holds (so entries collide and are
// replaced), and for copies of a name at other addresses.
func TestSlotCacheChecksName(t *testing.T) {
	var rb rowBuilder
	names := []string{"source.ip", "user.name", "message", "url.original", "event.outcome", "input.name"}
	for i := range 3 * slotCacheSize {
		names = append(names, "custom.field."+strconv.Itoa(i))
	}
	for round := range 3 {
		for _, n := range names {
			k := n
			if round == 1 {
				k = string([]byte(n)) // the same name elsewhere
			}
			slot, pre, _ := rb.slotOf(k)
			if slot != slotOf(n) || pre != namePrefix(n) {
				t.Fatalf("round %d: slotOf(%q) = %d, %x; want %d, %x", round, n, slot, pre, slotOf(n), namePrefix(n))
			}
		}
	}
}

// TestAppendKey: a field's JSON key comes out as appendJSONString writes
// it, from the cache or, once a later name took its entry, without it.
func TestAppendKey(t *testing.T) {
	var rb rowBuilder
	names := []string{"user.name", `quo"te`, "line\u2028sep", "bad \xff", "url.path"}
	for i := range 2 * slotCacheSize {
		names = append(names, "f."+strconv.Itoa(i))
	}
	for round := range 2 {
		kvs := make([]fieldKV, len(names))
		for i, n := range names {
			slot, pre, at := rb.slotOf(n)
			kvs[i] = fieldKV{k: n, slot: slot, pre: pre, at: at}
		}
		for i := range kvs {
			want := string(appendJSONString(nil, kvs[i].k)) + ":"
			if got := string(rb.appendKey(nil, &kvs[i])); got != want {
				t.Fatalf("round %d: key of %q = %s, want %s", round, kvs[i].k, got, want)
			}
		}
	}
}
