package render_test

import (
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// With forceUser in the settings, the Ceph Jobs rendered while git says
// forcePromote: true (the forced promote, and the returning site's demote
// and resync) run as it, with its key; every other Job, the rpo-check and
// every Job of a planned move keep cephUser and its key, so that key needs
// no blocklisting right.
func TestForceUserOnlyInAForcedFailover(t *testing.T) {
	settings := exampleSettings(t)
	force := &config.CephCredential{User: "wordpress-force", Secret: config.SecretKeyRef{Name: "rbd-dr-ceph-wordpress-force", Key: "wordpress-force"}}
	for i := range settings.Namespaces {
		if settings.Namespaces[i].Namespace == "wordpress" {
			settings.Namespaces[i].ForceUser = force
		}
	}
	tenant, err := settings.Tenant("wordpress")
	if err != nil {
		t.Fatal(err)
	}
	if caps := tenant.UserCaps(); caps["mon"] != "allow r" || tenant.ForceCaps()["mon"] != "profile rbd" {
		t.Errorf("with forceUser, cephUser's mon cap is %q and forceUser's %q", caps["mon"], tenant.ForceCaps()["mon"])
	}
	seen := map[hookcmd.Step]bool{}
	for _, forced := range []bool{false, true} {
		for _, c := range []struct {
			site string
			role render.Role
		}{{"site-a", render.Active}, {"site-b", render.Passive}} {
			res := renderExampleWith(t, c.site, c.role, func(p *config.Policy) { p.ForcePromote = forced }, settings)
			for step, jr := range renderedJobs(t, res) {
				if step == hookcmd.Quiesce {
					continue
				}
				want := config.CephCredential{User: tenant.CephUser, Secret: tenant.CephSecret}
				if forced && step != hookcmd.Prepare {
					want = *force
					seen[step] = true
				}
				secret, _, key := testutil.SecretFile(jr.job.Spec.Template.Spec, jr.req.Ceph.KeyFile)
				if secret == nil || jr.req.Ceph.ID != want.User || secret.SecretName != want.Secret.Name || key != want.Secret.Key {
					t.Errorf("forcePromote %t, %s %s: runs as %q with Secret %v key %q, want %q from %s key %s",
						forced, c.site, step, jr.req.Ceph.ID, secret, key, want.User, want.Secret.Name, want.Secret.Key)
				}
			}
		}
	}
	for _, step := range []hookcmd.Step{hookcmd.Promote, hookcmd.Demote, hookcmd.Resync} {
		if !seen[step] {
			t.Errorf("no forced %s Job was rendered to check", step)
		}
	}
}
