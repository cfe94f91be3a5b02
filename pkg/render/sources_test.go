package render_test

import (
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// A refusal names the file each refused object comes from, relative to the
// app folder, through the overlay's bases; several refusals each name their
// own. kustomize's output keeps no file names: a second build finds them.
func TestRefusalsNameTheirFiles(t *testing.T) {
	daemonSet := `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, image: busybox}]
      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
`
	_, err := renderInline(t, render.Passive, map[string]string{
		"app/base/kustomization.yaml":    "resources: [agent.yaml, writer.yaml]\n",
		"app/base/agent.yaml":            daemonSet,
		"app/base/writer.yaml":           writer,
		"app/overlay/kustomization.yaml": "namespace: shop\nresources: [../base, extra.yaml]\n",
		"app/overlay/extra.yaml":         strings.ReplaceAll(strings.ReplaceAll(writer, "writer", "extra"), "claimName: data", "claimName: logs"),
	})
	if err == nil {
		t.Fatal("rendered an overlay with a DaemonSet writer and an undeclared claim")
	}
	for _, want := range []string{"base/agent.yaml: DaemonSet agent mounts", "overlay/extra.yaml: Deployment extra mounts PersistentVolumeClaim logs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in: %v", want, err)
		}
	}
}
