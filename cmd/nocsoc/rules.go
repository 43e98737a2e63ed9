package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/sigma"
)

const rulesUsage = `usage:
  nocsoc rules check [--pipeline FILE] PATH...
  nocsoc rules test --rules PATH... --events FILE [--pipeline FILE]`

// rulesCmd implements "nocsoc rules": checking Sigma rule files and
// running them over a file of events.
func rulesCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "rules" {
		args = args[1:]
	}
	if len(args) == 0 {
		return fmt.Errorf("rules: missing subcommand\n%s", rulesUsage)
	}
	opts, err := parseRulesArgs(args[1:])
	if err != nil {
		return fmt.Errorf("rules %s: %w\n%s", args[0], err, rulesUsage)
	}
	pipe := sigma.DefaultPipeline()
	if opts.pipeline != "" {
		if pipe, err = sigma.LoadPipeline(opts.pipeline); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
	}
	switch args[0] {
	case "check":
		paths := append(opts.positional, opts.rules...)
		if len(paths) == 0 {
			return fmt.Errorf("rules check: no paths\n%s", rulesUsage)
		}
		rules, loadErrs := sigma.LoadDir(paths...)
		eng, compErrs := sigma.Compile(rules, pipe)
		errs := append(loadErrs, compErrs...)
		for _, err := range errs {
			fmt.Fprintln(stdout, describeLoadError(err))
		}
		st := eng.Stats()
		fmt.Fprintf(stdout, "loaded=%d failed=%d\n", st.Rules+st.Correlations, len(errs))
		return nil
	case "test":
		if len(opts.rules) == 0 || opts.events == "" {
			return fmt.Errorf("rules test: --rules and --events are required\n%s", rulesUsage)
		}
		rules, loadErrs := sigma.LoadDir(opts.rules...)
		eng, compErrs := sigma.Compile(rules, pipe)
		for _, err := range append(loadErrs, compErrs...) {
			fmt.Fprintln(stderr, describeLoadError(err))
		}
		return runRuleTest(eng, opts.events, stdout)
	}
	return fmt.Errorf("rules: unknown subcommand %q\n%s", args[0], rulesUsage)
}

type rulesOpts struct {
	rules, positional []string
	events, pipeline  string
}

func parseRulesArgs(args []string) (rulesOpts, error) {
	var o rulesOpts
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "--rules", "-rules":
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				o.rules = append(o.rules, args[i])
			}
			if len(o.rules) == 0 {
				return o, errors.New("--rules needs at least one path")
			}
		case "--events", "-events", "--pipeline", "-pipeline":
			if i+1 >= len(args) {
				return o, fmt.Errorf("%s needs a value", a)
			}
			i++
			if strings.HasSuffix(a, "events") {
				o.events = args[i]
			} else {
				o.pipeline = args[i]
			}
		default:
			if strings.HasPrefix(a, "-") {
				return o, fmt.Errorf("unknown flag %s", a)
			}
			o.positional = append(o.positional, a)
		}
	}
	return o, nil
}

func describeLoadError(err error) string {
	var le *sigma.LoadError
	if errors.As(err, &le) {
		if le.Line > 0 {
			return fmt.Sprintf("%s: line %d: %s", le.Path, le.Line, le.Reason)
		}
		return fmt.Sprintf("%s: %s", le.Path, le.Reason)
	}
	return err.Error()
}

// ruleTestMatch is one line of "rules test" output.
type ruleTestMatch struct {
	RuleID     string    `json:"rule_id"`
	Title      string    `json:"title"`
	Level      string    `json:"level"`
	Author     string    `json:"author"`
	EventIndex int       `json:"event_index"`
	GroupKey   string    `json:"group_key,omitempty"`
	Events     []int     `json:"events,omitempty"`
	Time       time.Time `json:"time"`
}

// runRuleTest feeds every line of path to the engine: JSON objects are
// events, other lines become {"message": line}. Event time is @timestamp
// when it parses as RFC 3339, else the previous event's time.
func runRuleTest(eng *sigma.Engine, path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("rules test: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	enc := json.NewEncoder(stdout)
	var at time.Time
	for line := 0; sc.Scan(); line++ {
		text := sc.Text()
		ev := sigma.MapEvent{}
		if t := strings.TrimSpace(text); strings.HasPrefix(t, "{") {
			if err := json.Unmarshal([]byte(t), (*map[string]any)(&ev)); err != nil {
				ev = sigma.MapEvent{"message": text}
			}
		} else {
			ev["message"] = text
		}
		if ts, ok := ev["@timestamp"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				at = t
			}
		}
		for _, m := range eng.Match(ev, at) {
			out := ruleTestMatch{RuleID: m.Rule.ID, Title: m.Rule.Title, Level: m.Rule.Level, Author: m.Rule.Author,
				EventIndex: m.EventIndex, GroupKey: m.GroupKey, Events: m.Events, Time: m.Time}
			if err := enc.Encode(out); err != nil {
				return fmt.Errorf("rules test: %w", err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("rules test: %s: %w", path, err)
	}
	return nil
}
