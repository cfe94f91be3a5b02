package config_test

import (
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

const adopted = `# An app that is being adopted.
apiVersion: rbd-dr.io/v1alpha1
kind: FailoverPolicy
activeSite: site-a
sites:
  - name: site-a
  - name: site-b
volumes:              # filled in by argocd-rbd-dr adopt
  - pvc: old
    pool: replicapool
    image: old
    size: 1Gi

# How long the steps may take.
hooks:
  timeout: 10m
`

// adopt's edit replaces the volumes: block and keeps every other byte, the
// comments and blank line before the next key included; without a block it
// adds one at the end.
func TestSetVolumes(t *testing.T) {
	block := config.VolumesBlock([]config.Volume{
		{PVC: "data", Pool: "replicapool", Image: "csi-vol-1", Size: "20Gi", ImageFeatures: config.DefaultImageFeatures, FSType: "xfs"},
		{PVC: "logs", Pool: "replicapool", Image: "csi-vol-2", Size: "1Gi"},
	})
	if want := "volumes:\n  - pvc: data\n    pool: replicapool\n    image: csi-vol-1\n    size: 20Gi\n    fsType: xfs\n  - pvc: logs\n    pool: replicapool\n    image: csi-vol-2\n    size: 1Gi\n"; block != want {
		t.Errorf("block:\n%s", block)
	}
	opts := config.Options{DisplayName: "rbd-dr.yaml", AppDir: t.TempDir()}
	out, err := config.SetVolumes([]byte(adopted), block, opts)
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(adopted, "volumes:")
	end := strings.Index(adopted, "\n# How long")
	if want := adopted[:start] + block + adopted[end:]; string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	p, err := config.Parse(out, opts)
	if err != nil || len(p.Volumes) != 2 || p.Hooks.Timeout != "10m" {
		t.Errorf("%v %+v", err, p)
	}

	without := strings.Replace(adopted, adopted[start:end+1], "", 1)
	out, err = config.SetVolumes([]byte(without), block, opts)
	if err != nil || string(out) != without+block {
		t.Errorf("%v:\n%s", err, out)
	}
	if _, err := config.SetVolumes([]byte(adopted), "volumes:\n  - pvc: Bad_Name\n    pool: p\n    image: i\n    size: 1Gi\n", opts); err == nil || !strings.Contains(err.Error(), "would not be valid; nothing changed") {
		t.Errorf("an invalid result: %v", err)
	}
}
