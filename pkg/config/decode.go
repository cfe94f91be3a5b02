package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// MaxFileSize bounds what is read of a settings or policy file: both are a
// page of YAML, and an unbounded read of a hostile file (a link to /dev/zero)
// never returns.
const MaxFileSize = 1 << 20

// parseDocument parses exactly one YAML document whose root is a mapping.
// Syntax errors are placed on the first line from which the text no longer
// parses, so the line shown is the one a person must look at.
func parseDocument(data []byte, file, expect string) (*yaml.Node, Problems) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Message: "the file is empty; " + expect}}
		}
		return nil, Problems{syntaxProblem(data, file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, Problems{syntaxProblem(data, file, err)}
		}
		return nil, Problems{{File: file, Line: extra.Line, Message: "a second YAML document; keep one document per file"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Problems{{File: file, Line: root.Line, Message: "expected a mapping of fields; " + expect}}
	}
	return root, nil
}

// decodeFile parses one document and decodes it strictly into out (a
// pointer to a struct); it returns where each field is, for the checks that
// follow.
func decodeFile(data []byte, file, expect string, moved func(string) string, out any) (index, Problems) {
	root, problems := parseDocument(data, file, expect)
	if problems != nil {
		return nil, problems
	}
	d := newDecoder(file, moved)
	d.decode(root, "", reflect.ValueOf(out).Elem())
	return d.idx, d.problems
}

// yamlLine finds the line yaml.v3 names in a syntax error. It is only a
// hint: syntaxProblem checks it against the text itself.
var yamlLine = regexp.MustCompile(`line (\d+): `)

// syntaxProblem places a syntax error on the first line whose prefix of the
// file no longer parses, starting from the line yaml.v3 names (which is
// counted from 0 or from 1 depending on the error). Without a hint it
// searches from the top.
func syntaxProblem(data []byte, file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	from := 1
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		from, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + msg[m[1]:]
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	line := 0
	for n := max(from, 1); n <= len(lines); n++ {
		if !parses(bytes.Join(lines[:n], nil)) {
			line = n
			break
		}
	}
	return Problem{File: file, Line: line, Message: "not valid YAML: " + msg}
}

func parses(prefix []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(prefix))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// index maps field paths (sites[1].name) to their lines, so that a check
// made after decoding can still name the line.
type index map[string]int

// line finds the line of a field, or of its nearest parent present in the file.
func (idx index) line(path string) int {
	for path != "" {
		if l, ok := idx[path]; ok {
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

// decoder fills Go structs from a yaml.v3 node tree strictly: every key must
// be a field, every value of the field's kind, booleans only true or false.
// Each node carries its own line, so every problem is placed without reading
// yaml.v3's messages.
type decoder struct {
	file     string
	idx      index
	problems Problems
	// moved says where a field that is no longer accepted here went, by its
	// path without indexes (sites[].cluster); "" if it never existed.
	moved func(path string) string
}

func newDecoder(file string, moved func(string) string) *decoder {
	if moved == nil {
		moved = func(string) string { return "" }
	}
	return &decoder{file: file, idx: index{}, moved: moved}
}

func (d *decoder) addf(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

var indexes = regexp.MustCompile(`\[\d+\]`)

// decode fills v, addressable, from n.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // as if absent: the default applies
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, path, elem.Elem())
		v.Set(elem)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.addf(n.Line, path, "expected a mapping of fields (%s), found %s", strings.Join(yamlFields(v.Type()), ", "), describe(n))
			return
		}
		d.mapping(n, path, v, map[string]int{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.addf(n.Line, path, "expected a list, found %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.idx[p] = c.Line
			d.decode(c, p, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		// Maps of names to strings (a node selector, resource quantities):
		// keys are strings, each key once, values decoded as the map's.
		if n.Kind != yaml.MappingNode || v.Type().Key().Kind() != reflect.String {
			d.addf(n.Line, path, "expected a mapping, found %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := path + "." + k.Value
			d.idx[p] = k.Line
			key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
			if m.MapIndex(key).IsValid() {
				d.addf(k.Line, p, "is given twice; keep one")
				continue
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, p, elem)
			m.SetMapIndex(key, elem)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.addf(n.Line, path, "expected a string, found %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		// yaml.v3 would take yes, on, no, off for a bool: a flag that can
		// lose data must be written as true or false.
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || (n.Value != "true" && n.Value != "false") {
			d.addf(n.Line, path, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true")
	case reflect.Int, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil {
			d.addf(n.Line, path, "expected a whole number, found %s", describe(n))
			return
		}
		v.SetInt(i)
	default:
		d.addf(n.Line, path, "cannot be decoded into %s", v.Type())
	}
}

// mapping fills the struct v from the mapping n; seen catches a key given
// twice, also through a merge (<<).
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value, seen map[string]int) {
	fields := map[string]int{}
	for i := 0; i < v.NumField(); i++ {
		if name := yamlName(v.Type().Field(i)); name != "" {
			fields[name] = i
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.Tag == "!!merge" {
			for val.Kind == yaml.AliasNode {
				val = val.Alias
			}
			if val.Kind != yaml.MappingNode {
				d.addf(key.Line, path, "a merge (<<) must name a mapping, found %s", describe(val))
				continue
			}
			d.mapping(val, path, v, seen)
			continue
		}
		p := key.Value
		if path != "" {
			p = path + "." + key.Value
		}
		if key.Kind != yaml.ScalarNode {
			d.addf(key.Line, path, "a key must be a plain name, found %s", describe(key))
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.addf(key.Line, p, "is given twice (first on line %d); keep one", first)
			continue
		}
		seen[key.Value] = key.Line
		d.idx[p] = key.Line
		f, ok := fields[key.Value]
		if !ok {
			if where := d.moved(indexes.ReplaceAllString(p, "[]")); where != "" {
				d.addf(key.Line, p, "is no longer set here: %s", where)
			} else {
				d.addf(key.Line, p, "unknown field %q; the fields here are %s", key.Value, strings.Join(yamlFields(v.Type()), ", "))
			}
			continue
		}
		d.decode(val, p, v.Field(f))
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// yamlFields lists the YAML names of a struct's fields, for hints.
func yamlFields(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// describe names what a node holds, for "expected X, found Y".
func describe(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int":
		return fmt.Sprintf("the number %s", n.Value)
	case "!!float":
		return fmt.Sprintf("the number %s", n.Value)
	case "!!bool":
		return fmt.Sprintf("the boolean %s", n.Value)
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}
