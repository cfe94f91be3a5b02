package workload

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// A kind the settings teach reaches the quiesce hook as one flag value:
// GROUP/VERSION/RESOURCE/KIND:POD.SPEC.PATH:STOP.PATH=VALUE, for example
// example.com/v1/databases/Database:spec.template.spec:spec.replicas=0.

// Flag is the kind written as the quiesce hook reads it (ParseFlag).
func (k Kind) Flag() string {
	return fmt.Sprintf("%s/%s/%s/%s:%s:%s=%v", k.Group, k.Version, k.Resource, k.Name, strings.Join(k.PodSpec, "."), strings.Join(k.StopPath, "."), k.StopValue)
}

// ParseFlag reads a kind written by Flag, and checks it as the settings do.
func ParseFlag(s string) (Kind, error) {
	bad := func(why string) (Kind, error) {
		return Kind{}, fmt.Errorf("workload kind %q: %s; write it as GROUP/VERSION/RESOURCE/KIND:POD.SPEC.PATH:STOP.PATH=0|true", s, why)
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad("not three parts separated by ':'")
	}
	api := strings.Split(parts[0], "/")
	if len(api) != 4 {
		return bad("the API part is not GROUP/VERSION/RESOURCE/KIND")
	}
	path, value, ok := strings.Cut(parts[2], "=")
	if !ok {
		return bad("the stop part has no '='")
	}
	k := Kind{Group: api[0], Version: api[1], Resource: api[2], Name: api[3], PodSpec: Path(parts[1]), StopPath: Path(path)}
	switch value {
	case "true":
		k.StopValue = true
	case "0":
		k.StopValue = int64(0)
	default:
		return bad("the stop value is not 0 (replicas) or true (suspend)")
	}
	if problems := Check(k); len(problems) > 0 {
		return bad(problems[0].Field + " " + problems[0].Message)
	}
	return k, nil
}

// Path splits a dotted field path; "" is no path.
func Path(dotted string) []string {
	if dotted == "" {
		return nil
	}
	return strings.Split(dotted, ".")
}

// Problem is one thing wrong with a taught kind, by its field.
type Problem struct{ Field, Message string }

var (
	kindName  = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,62}$`)
	fieldName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,62}$`)
)

// Check says what is wrong with a kind the settings teach (or the renderer
// passes to quiesce: a Rollout too). Its names reach
// the API as a resource path and its paths are followed in every object of
// the kind, so each is checked before it is used. Fields: group, version,
// kind, resource, podSpec, stop.
func Check(k Kind) []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{field, fmt.Sprintf(format, args...)})
	}
	if errs := validation.IsDNS1123Subdomain(k.Group); len(errs) > 0 || !strings.Contains(k.Group, ".") {
		add("group", "%q is not a custom resource's API group (a domain name such as example.com)", k.Group)
	}
	if errs := validation.IsDNS1123Label(k.Version); len(errs) > 0 {
		add("version", "%q is not an API version (such as v1 or v1beta1)", k.Version)
	}
	if !kindName.MatchString(k.Name) {
		add("kind", "%q is not a kind name (CamelCase, such as Database)", k.Name)
	}
	if errs := validation.IsDNS1123Label(k.Resource); len(errs) > 0 {
		add("resource", "%q is not an API resource name (the lowercase plural, such as databases)", k.Resource)
	}
	if len(k.PodSpec) == 0 || !allFields(k.PodSpec) {
		add("podSpec", "%q is not a field path (such as spec.template.spec)", strings.Join(k.PodSpec, "."))
	}
	switch {
	case len(k.StopPath) < 2 || k.StopPath[0] != "spec" || !allFields(k.StopPath):
		add("stop", "%q is not a field path under spec (such as spec.replicas)", strings.Join(k.StopPath, "."))
	case k.StopValue != int64(0) && k.StopValue != true:
		add("stop", "stops the kind with %v; only replicas 0 or suspend true are known", k.StopValue)
	}
	return out
}

func allFields(path []string) bool {
	for _, f := range path {
		if !fieldName.MatchString(f) {
			return false
		}
	}
	return true
}
