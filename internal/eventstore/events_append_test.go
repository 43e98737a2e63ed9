package eventstore

import (
	"encoding/json"
	"math"
	"math/rand/v2"
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
