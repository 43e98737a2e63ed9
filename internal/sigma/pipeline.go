package sigma

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed default_pipeline.yml
var defaultPipelineYAML []byte

// Pipeline maps Sigma logsources to conditions on event fields and Sigma
// field names to event field names, like a pySigma processing pipeline.
type Pipeline struct {
	Name string `yaml:"name"`
	// KeywordFields are the event fields keyword searches look at; when an
	// event has none of them, every field value of the event is searched.
	KeywordFields []string `yaml:"keyword_fields"`
	// SourceFields name the event fields that identify product, service
	// and category for rules whose logsource no mapping covers.
	SourceFields SourceFields `yaml:"source_fields"`
	// FieldMap renames Sigma fields for every logsource.
	FieldMap map[string]string `yaml:"fieldmap"`
	// Vars resolve %name% placeholders of the expand modifier.
	Vars map[string]Strings `yaml:"vars"`
	// Logsources maps rule logsources to event conditions.
	Logsources []LogsourceMapping `yaml:"logsources"`
}

// SourceFields lists, per logsource key, the event fields whose (first
// present) value gives that key for an event.
type SourceFields struct {
	Product  []string `yaml:"product"`
	Category []string `yaml:"category"`
	Service  []string `yaml:"service"`
}

// LogsourceMapping says which events belong to a rule logsource. A rule
// uses every mapping whose set of product/category/service equals the
// rule's own (case-insensitively); several mappings for one logsource
// are alternatives (Sysmon 1 or Security 4688), each with its own fields.
type LogsourceMapping struct {
	Name     string `yaml:"name"`
	Product  string `yaml:"product"`
	Category string `yaml:"category"`
	Service  string `yaml:"service"`
	// When is a disjunction of conjunctions: the event belongs to the
	// logsource if all fields of one entry have one of the listed values
	// (compared case-insensitively; "*" means the field is present).
	When []map[string]Strings `yaml:"when"`
	// FieldMap renames Sigma fields for events of this mapping; it takes
	// precedence over the pipeline's FieldMap.
	FieldMap map[string]string `yaml:"fieldmap"`
}

// Strings is a YAML scalar or list of scalars.
type Strings []string

// UnmarshalYAML accepts a scalar or a list of scalars.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = Strings{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(Strings, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: expected a scalar", c.Line)
			}
			out = append(out, c.Value)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("line %d: expected a scalar or a list of scalars", n.Line)
}

// DefaultPipeline returns nocsoc's built-in pipeline: Windows (Sysmon,
// Security, System, PowerShell and other channels, flattened EventData
// fields) and Linux/web sources on nocsoc's normalized ECS fields.
func DefaultPipeline() *Pipeline {
	p, err := ParsePipeline(defaultPipelineYAML)
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic("sigma: default pipeline: " + err.Error())
	}
	return p
}

// LoadPipeline reads a pipeline YAML file.
func LoadPipeline(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sigma pipeline: %w", err)
	}
	p, err := ParsePipeline(data)
	if err != nil {
		return nil, fmt.Errorf("sigma pipeline %s: %w", path, err)
	}
	return p, nil
}

// ParsePipeline parses pipeline YAML strictly (unknown keys are errors).
func ParsePipeline(data []byte) (*Pipeline, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Pipeline
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	for i, m := range p.Logsources {
		if m.Product == "" && m.Category == "" && m.Service == "" {
			return nil, fmt.Errorf("logsources[%d] (%s): product, category or service required", i, m.Name)
		}
		if len(m.When) == 0 {
			return nil, fmt.Errorf("logsources[%d] (%s): when: required", i, m.Name)
		}
		for j, w := range m.When {
			if len(w) == 0 {
				return nil, fmt.Errorf("logsources[%d] (%s): when[%d]: empty", i, m.Name, j)
			}
			for f, vs := range w {
				if len(vs) == 0 {
					return nil, fmt.Errorf("logsources[%d] (%s): when[%d].%s: no values", i, m.Name, j, f)
				}
			}
		}
	}
	return &p, nil
}

// mappingsFor returns the indices of mappings whose logsource equals ls.
func (p *Pipeline) mappingsFor(ls Logsource) []int {
	var out []int
	for i, m := range p.Logsources {
		if strings.EqualFold(m.Product, ls.Product) && strings.EqualFold(m.Category, ls.Category) && strings.EqualFold(m.Service, ls.Service) {
			out = append(out, i)
		}
	}
	return out
}
