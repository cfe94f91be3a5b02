package render

import (
	"fmt"
	"hash/fnv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels and annotations on everything argocd-rbd-dr adds.
const (
	managedByLabel  = "app.kubernetes.io/managed-by"
	managedBy       = "argocd-rbd-dr"
	appLabel        = "rbd-dr.io/app"
	stepLabel       = "rbd-dr.io/step"
	imageAnnotation = "rbd-dr.io/image"
)

// maxName is the longest name that is also a valid label value, as a Job's
// name must be (its pods carry it in the job-name label).
const maxName = 63

func labels(app, step string) map[string]string {
	l := map[string]string{managedByLabel: managedBy, appLabel: app}
	if step != "" {
		l[stepLabel] = step
	}
	return l
}

// shorten fits name into maxName characters, keeping it unique with a hash of
// what it stands for.
func shorten(name, of string) string {
	h := fnv.New32a()
	h.Write([]byte(of))
	suffix := fmt.Sprintf("-%08x", h.Sum32())
	if len(name) > maxName-len(suffix) {
		name = name[:maxName-len(suffix)]
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

// toObject turns a typed object into the map we print, without the empty
// fields the typed encoders add (creationTimestamp: null, status: {}).
func toObject(obj runtime.Object) (Object, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(m, "spec", "template", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(m, "status")
	return m, nil
}
