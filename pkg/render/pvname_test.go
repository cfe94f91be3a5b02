package render

import (
	"encoding/base32"
	"math/rand/v2"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// pvSpec reads a PV name back into pool/image: that it can, for every name
// pvName makes, is what makes the naming injective.
func pvSpec(t *testing.T, name string) string {
	t.Helper()
	labels := strings.Split(name, ".")
	switch {
	case labels[0] == "rbd" && (len(labels) == 3 || len(labels) == 4):
		return strings.Join(labels[1:], "/")
	case labels[0] == "rbd-b32":
		b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.Join(labels[1:], "")))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(b)
	}
	t.Fatalf("%s is in neither form", name)
	return ""
}

func TestPVNamesNeverCollide(t *testing.T) {
	// The collision of the old rbd-<pool>-<image>: both were rbd-replica-pool-vol.
	a, _ := pvName(config.Volume{Pool: "replica-pool", Image: "vol"})
	b, _ := pvName(config.Volume{Pool: "replica", Image: "pool-vol"})
	if a == b {
		t.Fatalf("replica-pool/vol and replica/pool-vol share the PV name %s", a)
	}
	const chars = "abcz09-._AZ"
	random := func(r *rand.Rand) string {
		var b strings.Builder
		b.WriteByte("aZ0"[r.IntN(3)])
		for range r.IntN(70) {
			b.WriteByte(chars[r.IntN(len(chars))])
		}
		return b.String()
	}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{}
	for range 20000 {
		vol := config.Volume{Pool: random(r), Image: random(r)}
		if r.IntN(2) == 0 { // half of them in a RADOS namespace
			ns := random(r)
			vol.Namespace = ns[:min(len(ns), 10)] // three long names overflow a PV name

		}
		if !config.ValidCephName(vol.Pool) || !config.ValidCephName(vol.Image) || (vol.Namespace != "" && !config.ValidCephName(vol.Namespace)) {
			continue
		}
		name, err := pvName(vol)
		if err != nil {
			t.Fatalf("%s: %v", vol.Spec(), err)
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Fatalf("%s: %q is not a PV name: %v", vol.Spec(), name, errs)
		}
		if got := pvSpec(t, name); got != vol.Spec() {
			t.Fatalf("%s named %s, which reads back as %s", vol.Spec(), name, got)
		}
		if other, dup := seen[name]; dup && other != vol.Spec() {
			t.Fatalf("%s and %s share the PV name %s", other, vol.Spec(), name)
		}
		seen[name] = vol.Spec()
	}
	// The same pool and image in two RADOS namespaces, and outside any.
	names := map[string]bool{}
	for _, ns := range []string{"", "teama", "teamb"} {
		n, _ := pvName(config.Volume{Pool: "replicapool", Namespace: ns, Image: "db"})
		names[n] = true
	}
	if len(names) != 3 {
		t.Errorf("replicapool/db in two RADOS namespaces and outside them share PV names: %v", names)
	}
	long := config.Volume{Pool: strings.Repeat("P", 128), Image: strings.Repeat("I", 128)}
	if _, err := pvName(long); err == nil || !strings.Contains(err.Error(), "cannot name its PersistentVolume within 253 characters") {
		t.Errorf("names too long for a PV: %v", err)
	}
}
