package sigma

import (
	"testing"
	"time"
)

func FuzzParseRule(f *testing.F) {
	f.Add([]byte("title: t\ndetection:\n  sel: {A|contains: x}\n  condition: sel\n"))
	f.Add([]byte("title: t\ndetection:\n  k: [a, 'b*c']\n  condition: k | count() by x > 2\ntimeframe: 5m\n"))
	f.Add([]byte("title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 2}\n"))
	f.Add([]byte("action: global\ntitle: g\n---\ndetection:\n  s: {F|re: 'a+'}\n  condition: s\n"))
	p := DefaultPipeline()
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, _ := ParseRule("fuzz.yml", data)
		eng, _ := Compile(rules, p)
		eng.Match(MapEvent{"A": "xyz", "F": "aaa", "message": "b c", "x": 1.0}, time.Unix(0, 0))
		eng.Tick(time.Unix(3600, 0))
	})
}

func FuzzCondition(f *testing.F) {
	for _, s := range []string{"a and not b", "1 of sel_* or (a and b)", "all of them", "not (a or b) and c",
		"a | count(x) by y >= 3", "((a)", "a and", "1 of", "them"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cond string) {
		node, _, err := parseCondition(cond)
		if err != nil {
			return
		}
		det := &detection{searches: map[string]*search{}}
		for _, n := range []string{"a", "b", "c", "sel_1", "sel_2"} {
			det.searches[n] = &search{name: n, alts: []fieldSet{{{field: n, values: []any{"1"}}}}}
			det.order = append(det.order, n)
		}
		det.cond = node
		if checkRefs(node, det) != nil {
			return
		}
		root, err := compileDetection(det, nil, func(string) int32 { return 0 })
		if err != nil {
			t.Fatalf("valid condition %q failed to compile: %v", cond, err)
		}
		_ = root
	})
}
