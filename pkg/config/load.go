package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// Options place the file: where it is shown from and what it may reach.
type Options struct {
	// DisplayName is how messages name the file (e.g. its path in the repository).
	DisplayName string
	// AppDir is the absolute app folder; overlays are relative to it.
	AppDir string
	// RepoRoot is the absolute repository root; no overlay may leave it.
	RepoRoot string
}

// Load reads, decodes and validates appDir/rbd-dr.yaml.
func Load(appDir, repoRoot string) (*Policy, error) {
	path := filepath.Join(appDir, FileName)
	display := FileName
	if rel, err := filepath.Rel(repoRoot, path); err == nil && !strings.HasPrefix(rel, "..") {
		display = filepath.ToSlash(rel)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: not found: this folder is not an argocd-rbd-dr app (add %s, see examples/wordpress)", display, FileName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", display, err)
	}
	return Parse(data, Options{DisplayName: display, AppDir: appDir, RepoRoot: repoRoot})
}

// Parse decodes and validates one policy document. Every problem found is
// returned at once, as Problems.
func Parse(data []byte, opts Options) (*Policy, error) {
	if opts.DisplayName == "" {
		opts.DisplayName = FileName
	}
	file := opts.DisplayName
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Message: "the file is empty; start from examples/wordpress/rbd-dr.yaml"}}
		}
		return nil, Problems{syntaxProblem(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, Problems{syntaxProblem(file, err)}
		}
		return nil, Problems{{File: file, Line: line, Message: "a second YAML document; keep one FailoverPolicy per file"}}
	}
	idx := indexNode(&doc)
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, Problems{{File: file, Line: doc.Line, Message: "expected a mapping with apiVersion, kind, activeSite, sites and volumes"}}
	}

	var p Policy
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&p); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, typeProblems(file, idx, te)
		}
		return nil, Problems{syntaxProblem(file, err)}
	}
	p.File = file
	v := validator{file: file, idx: idx, opts: opts}
	v.policy(&p)
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	return &p, nil
}

// index maps field paths (sites[1].name) to lines and lines back to the
// deepest field on them, so that every message can name both.
type index struct {
	lines  map[string]int
	fields map[int]string
	values map[string]*yaml.Node
}

func indexNode(doc *yaml.Node) *index {
	idx := &index{lines: map[string]int{}, fields: map[int]string{}, values: map[string]*yaml.Node{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i], n.Content[i+1]
				p := key.Value
				if path != "" {
					p = path + "." + key.Value
				}
				idx.lines[p] = key.Line
				idx.fields[key.Line] = p
				idx.values[p] = val
				walk(val, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx.lines[p] = c.Line
				if _, taken := idx.fields[c.Line]; !taken {
					idx.fields[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return idx
}

// line finds the line of a field, or of its nearest parent present in the file.
func (idx *index) line(path string) int {
	for path != "" {
		if l, ok := idx.lines[path]; ok {
			return l
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			break
		}
		path = path[:cut]
	}
	return 0
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// yaml.v3 counts these parser errors from 0 (see TestSyntaxErrorLines).
		if strings.HasPrefix(m[2], "did not find expected ',' or") || strings.HasPrefix(m[2], "did not find expected key") ||
			strings.HasPrefix(m[2], "found a tab character") {
			line++
		}
		return Problem{File: file, Line: line, Message: "not valid YAML: " + m[2]}
	}
	return Problem{File: file, Message: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	wrongType    = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
)

// typeProblems turns yaml.v3's decoding errors into placed, plain messages.
func typeProblems(file string, idx *index, te *yaml.TypeError) Problems {
	var out Problems
	for _, e := range te.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			out = append(out, Problem{File: file, Message: e})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		field := idx.fields[line]
		msg := m[2]
		if u := unknownField.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("unknown field %q; the fields here are %s", u[1], strings.Join(fieldsOf(u[2]), ", "))
		} else if w := wrongType.FindStringSubmatch(msg); w != nil {
			msg = fmt.Sprintf("expected %s, found %s", describeType(w[3]), describeTag(w[1]))
			if w[2] != "" {
				msg += fmt.Sprintf(" %q", w[2])
			}
		}
		out = append(out, Problem{File: file, Line: line, Field: field, Message: msg})
	}
	return out
}

var typesByName = map[string]reflect.Type{
	"config.Policy": reflect.TypeOf(Policy{}),
	"config.Site":   reflect.TypeOf(Site{}),
	"config.Volume": reflect.TypeOf(Volume{}),
	"config.Hooks":  reflect.TypeOf(Hooks{}),
	"config.Apps":   reflect.TypeOf(Apps{}),
	"config.Retry":  reflect.TypeOf(Retry{}),
}

// fieldsOf lists the YAML names of a config type, for "unknown field" hints.
func fieldsOf(typeName string) []string {
	t, ok := typesByName[typeName]
	if !ok {
		return []string{"(see the README's rbd-dr.yaml reference)"}
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return names
}

func describeType(goType string) string {
	switch {
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "*int") || goType == "time.Duration":
		return "a whole number"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	default:
		return "a mapping of fields"
	}
}

func describeTag(tag string) string {
	switch tag {
	case "str":
		return "the string"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	default:
		return "the " + tag
	}
}
