package runbook

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
	"gopkg.in/yaml.v3"
)

// LineError is a problem at a line of a runbook file (1-based, counting
// the front matter's opening "---" as line 1).
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Msg }

// LoadDir reads every *.md file in dir (not recursively) as a provisioned
// runbook named after the file. Files that fail to parse or validate are
// reported as "path:line: reason" or "path: reason" in errs and skipped;
// the others are still returned, sorted by name.
func LoadDir(dir string) (rbs []Runbook, errs []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []error{fmt.Errorf("load runbooks: %w", err)}
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		rb, err := Parse(strings.TrimSuffix(e.Name(), ".md"), data)
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				errs = append(errs, fmt.Errorf("%s:%d: %s", path, le.Line, le.Msg))
			} else {
				errs = append(errs, fmt.Errorf("%s: %w", path, err))
			}
			continue
		}
		if info, err := e.Info(); err == nil {
			rb.UpdatedAt = info.ModTime().UTC()
		}
		rb.Provisioned = true
		rbs = append(rbs, rb)
	}
	return rbs, errs
}

// frontMatterKeys are the keys a runbook's front matter may hold.
var frontMatterKeys = []string{"title", "checks", "rules", "matchers", "team"}

// Parse reads one runbook file: an optional YAML front matter block
// between "---" lines, then the markdown body. Unknown front matter keys
// are errors (*LineError). The title defaults to the first level-1
// heading, then to the name. The result is validated.
func Parse(name string, data []byte) (Runbook, error) {
	rb := Runbook{Name: name}
	body := data
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if fm, rest, ok, err := splitFrontMatter(body); err != nil {
		return Runbook{}, err
	} else if ok {
		if err := decodeFrontMatter(fm, &rb); err != nil {
			return Runbook{}, err
		}
		body = rest
	}
	rb.Markdown = string(body)
	if rb.Title == "" {
		rb.Title = firstHeading(body)
	}
	if rb.Title == "" {
		rb.Title = name
	}
	if err := rb.Validate(); err != nil {
		return Runbook{}, err
	}
	return rb, nil
}

// splitFrontMatter returns the YAML between an opening "---" on the first
// line and the next line that is "---" or "...".
func splitFrontMatter(b []byte) (fm, rest []byte, ok bool, err error) {
	first, after, found := bytes.Cut(b, []byte("\n"))
	if string(bytes.TrimRight(first, "\r \t")) != "---" {
		return nil, b, false, nil
	}
	if !found {
		return nil, nil, false, &LineError{Line: 1, Msg: `front matter is not closed by a "---" line`}
	}
	off := 0
	for off <= len(after) {
		line, _, more := bytes.Cut(after[off:], []byte("\n"))
		t := string(bytes.TrimRight(line, "\r \t"))
		if t == "---" || t == "..." {
			end := off + len(line)
			if more {
				end++
			}
			return after[:off], after[end:], true, nil
		}
		if !more {
			break
		}
		off += len(line) + 1
	}
	return nil, nil, false, &LineError{Line: 1, Msg: `front matter is not closed by a "---" line`}
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// decodeFrontMatter decodes the front matter strictly. Line numbers are
// shifted by one for the opening "---".
func decodeFrontMatter(fm []byte, rb *Runbook) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(fm, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatchIndex(msg); m != nil {
			n, _ := strconv.Atoi(msg[m[2]:m[3]])
			return &LineError{Line: n + 1, Msg: "front matter: " + msg[m[1]:]}
		}
		return &LineError{Line: 1, Msg: "front matter: " + msg}
	}
	if len(doc.Content) == 0 {
		return nil // empty front matter
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return &LineError{Line: top.Line + 1, Msg: "front matter must be a mapping of keys to values"}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		line := k.Line + 1
		if seen[k.Value] {
			return &LineError{Line: line, Msg: fmt.Sprintf("duplicate key %q", k.Value)}
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "title":
			err = decodeScalar(v, &rb.Title)
		case "team":
			err = decodeScalar(v, &rb.Team)
		case "checks":
			err = decodeList(v, &rb.Checks)
		case "rules":
			err = decodeList(v, &rb.Rules)
		case "matchers":
			err = decodeList(v, &rb.Matchers)
		default:
			return &LineError{Line: line, Msg: fmt.Sprintf("unknown key %q (known: %s)", k.Value, strings.Join(frontMatterKeys, ", "))}
		}
		if err != nil {
			return &LineError{Line: v.Line + 1, Msg: k.Value + ": " + err.Error()}
		}
	}
	return nil
}

func decodeScalar(v *yaml.Node, dst *string) error {
	if v.Kind != yaml.ScalarNode {
		return errors.New("must be a string")
	}
	*dst = v.Value
	return nil
}

func decodeList(v *yaml.Node, dst *[]string) error {
	if v.Kind != yaml.SequenceNode {
		return errors.New("must be a list of strings")
	}
	out := make([]string, 0, len(v.Content))
	for i, c := range v.Content {
		if c.Kind != yaml.ScalarNode {
			return fmt.Errorf("item %d must be a string", i)
		}
		out = append(out, c.Value)
	}
	*dst = out
	return nil
}

// firstHeading returns the text of the first level-1 heading, or "".
func firstHeading(md []byte) string {
	doc := newMarkdown().Parser().Parse(text.NewReader(md))
	var title string
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if h, ok := n.(*ast.Heading); ok && entering && h.Level == 1 {
			var b strings.Builder
			for c := h.FirstChild(); c != nil; c = c.NextSibling() {
				inlineText(&b, c, md)
			}
			title = strings.Join(strings.Fields(b.String()), " ")
			return ast.WalkStop, nil
		}
		return ast.WalkContinue, nil
	})
	return title
}
