package render_test

import (
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// renderedJobs are the hook Jobs of a rendering, by step, with the request
// each one's command line parses to.
func renderedJobs(t *testing.T, res *render.Result) map[hookcmd.Step]jobAndRequest {
	t.Helper()
	out := map[hookcmd.Step]jobAndRequest{}
	for _, obj := range objects(t, toYAML(t, res)) {
		if obj.GetKind() != "Job" {
			continue
		}
		var j batchv1.Job
		if err := yaml.UnmarshalStrict(mustJSON(t, obj), &j); err != nil {
			t.Fatal(err)
		}
		c := j.Spec.Template.Spec.Containers[0]
		step := c.Command[len(c.Command)-1]
		req, err := hookcmd.Parse(step, c.Args)
		if err != nil {
			t.Fatalf("Job %s: %v", j.Name, err)
		}
		out[req.Step] = jobAndRequest{&j, req}
	}
	return out
}

type jobAndRequest struct {
	job *batchv1.Job
	req hookcmd.Request
}

// Demote and promote, and only they, read the OTHER site of the app as the
// settings' peerReader, with its key mounted from the namespace's Secret as
// the Ceph user's key is (read-only, same mode, never optional).
func TestPeerReaderOnDemoteAndPromoteOnly(t *testing.T) {
	settings := exampleSettings(t)
	tenant, err := settings.Tenant("wordpress")
	if err != nil || tenant.PeerReader == nil {
		t.Fatalf("the example settings give namespace wordpress no peerReader (%v)", err)
	}
	other := map[string]string{"site-a": "site-b", "site-b": "site-a"}
	force := func(p *config.Policy) { p.ForcePromote = true } // resync too
	for _, c := range cases {
		peer, _ := settings.Site(other[c.site])
		for step, jr := range renderedJobs(t, renderExample(t, c.site, c.role, force)) {
			got := jr.req.Peer
			own, _, _ := testutil.SecretFile(jr.job.Spec.Template.Spec, jr.req.Ceph.KeyFile)
			if !step.ReadsPeer() {
				if got != (rbd.Conn{}) {
					t.Errorf("%s/%s: %s reads the peer (%+v); only demote and promote may", c.site, c.role, step, got)
				}
				for _, v := range jr.job.Spec.Template.Spec.Volumes {
					if v.Secret != nil && v.Secret.SecretName == tenant.PeerReader.Secret.Name {
						t.Errorf("%s/%s: %s mounts the peer reader's Secret", c.site, c.role, step)
					}
				}
				continue
			}
			want := rbd.Conn{ID: tenant.PeerReader.User, KeyFile: "/etc/rbd-dr/peer/key", MonHost: strings.Join(peer.Monitors, ",")}
			if got != want {
				t.Errorf("%s/%s %s: peer %+v, want %+v (the monitors of %s)", c.site, c.role, step, got, want, other[c.site])
			}
			secret, mount, key := testutil.SecretFile(jr.job.Spec.Template.Spec, got.KeyFile)
			if secret == nil || own == nil {
				t.Fatalf("%s/%s %s: no Secret volume mounted at %s (peer) or %s (own)", c.site, c.role, step, got.KeyFile, jr.req.Ceph.KeyFile)
			}
			if secret.SecretName != tenant.PeerReader.Secret.Name || key != tenant.PeerReader.Secret.Key || !mount.ReadOnly {
				t.Errorf("%s/%s %s: peer key from Secret %s key %s (read-only %v), want %s key %s, read-only", c.site, c.role, step,
					secret.SecretName, key, mount.ReadOnly, tenant.PeerReader.Secret.Name, tenant.PeerReader.Secret.Key)
			}
			if !reflect.DeepEqual(secret.DefaultMode, own.DefaultMode) || secret.Optional == nil || *secret.Optional {
				t.Errorf("%s/%s %s: peer key mode %v optional %v, want the Ceph key's mode %v and not optional", c.site, c.role, step,
					secret.DefaultMode, secret.Optional, *own.DefaultMode)
			}
		}
	}
}

// Without peerReader, or with more than two sites (which one is the peer?),
// no Job reads a peer and no peer Secret is mounted.
func TestNoPeerReader(t *testing.T) {
	without := exampleSettings(t)
	for i := range without.Namespaces {
		without.Namespaces[i].PeerReader = nil
	}
	threeSites := exampleSettings(t)
	third, _ := threeSites.Site("site-b")
	third.Name, third.Cluster = "site-c", "https://site-c.example.com:6443"
	threeSites.Sites = append(threeSites.Sites, third)
	addC := func(p *config.Policy) {
		c, _ := p.Site("site-b")
		c.Name = "site-c"
		p.Sites = append(p.Sites, c)
	}
	for name, c := range map[string]struct {
		settings *config.Settings
		edit     func(*config.Policy)
	}{"no peerReader": {without, nil}, "three sites": {threeSites, addC}} {
		for _, rc := range cases {
			for step, jr := range renderedJobs(t, renderExampleWith(t, rc.site, rc.role, c.edit, c.settings)) {
				if jr.req.Peer != (rbd.Conn{}) || len(jr.job.Spec.Template.Spec.Volumes) > 2 {
					t.Errorf("%s, %s/%s: %s reads a peer (%+v) or mounts more than its key and binary", name, rc.site, rc.role, step, jr.req.Peer)
				}
			}
		}
	}
}

// git's forcePromote reaches the Jobs as flags: promote may force, and
// demote and resync know a forced failover was declared (demote then takes
// the peer's status claim to be primary when the peer's snapshots cannot
// say). Without it, no Job carries either.
func TestForcePromoteReachesDemoteResyncAndPromoteOnly(t *testing.T) {
	for _, force := range []bool{false, true} {
		set := func(p *config.Policy) { p.ForcePromote = force }
		for _, c := range cases {
			for step, jr := range renderedJobs(t, renderExample(t, c.site, c.role, set)) {
				wantForce := force && step == hookcmd.Promote
				wantDeclared := force && (step == hookcmd.Demote || step == hookcmd.Resync)
				if jr.req.Force != wantForce || jr.req.ForcePromoted != wantDeclared {
					t.Errorf("forcePromote %t, %s/%s %s: --force %t --force-promoted %t", force, c.site, c.role, step, jr.req.Force, jr.req.ForcePromoted)
				}
			}
		}
	}
}
