package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// Labels and annotations on everything argocd-rbd-dr adds. StepLabel names
// the hook step an object belongs to; plan reads it back.
const (
	managedByLabel  = "app.kubernetes.io/managed-by"
	managedBy       = "argocd-rbd-dr"
	appLabel        = "rbd-dr.io/app"
	siteLabel       = "rbd-dr.io/site"
	StepLabel       = "rbd-dr.io/step"
	imageAnnotation = "rbd-dr.io/image"
)

// maxName is the longest name that is also a valid label value, as a Job's
// name must be (its pods carry it in the job-name label).
const maxName = 63

func labels(app, step string) map[string]string {
	l := map[string]string{managedByLabel: managedBy, appLabel: app}
	if step != "" {
		l[StepLabel] = step
	}
	return l
}

// shorten fits name into maxName characters, keeping it unique with a hash of
// what it stands for.
func shorten(name, of string) string { return shortenTo(name, of, maxName) }

// shortenTo fits name into limit characters the same way.
func shortenTo(name, of string, limit int) string {
	h := fnv.New32a()
	h.Write([]byte(of))
	suffix := fmt.Sprintf("-%08x", h.Sum32())
	if len(name) > limit-len(suffix) {
		name = name[:limit-len(suffix)]
	}
	return strings.TrimRight(name, "-") + suffix
}

// objectName is <app>-rbd-dr-<part>, shortened if it must be.
func objectName(app, part string) string {
	name := app + "-rbd-dr-" + part
	if len(name) <= maxName {
		return name
	}
	return shorten(name, name)
}

// toObject turns one of our object types (kube.go, apps.go) into the map we
// print and that plan reads back.
func toObject(obj any) (Object, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var m Object
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", obj, err)
	}
	return m, nil
}

// writeDocs appends the objects to b as YAML documents, in the layout
// kustomize prints.
func writeDocs(b *bytes.Buffer, objs []Object) error {
	for _, obj := range objs {
		doc, err := kyaml.MarshalWithOptions(obj, &kyaml.EncoderOptions{SeqIndent: kyaml.CompactSequenceStyle})
		if err != nil {
			return fmt.Errorf("encoding %v %v: %w", obj["kind"], obj["metadata"], err)
		}
		if b.Len() > 0 {
			b.WriteString("---\n")
		}
		b.Write(doc)
	}
	return nil
}
