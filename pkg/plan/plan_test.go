package plan_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/plan"
)

// example loads examples/wordpress as the plan command does.
func example(t *testing.T) (*config.Policy, plan.Options) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(root, "examples", "wordpress")
	p, err := config.Load(app, root)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := config.LoadSettings(filepath.Join(root, "examples", "rbd-dr-settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p, plan.Options{RepoRoot: root, AppDir: app, Settings: settings}
}

func site(t *testing.T, pl *plan.Plan, name string) plan.Site {
	t.Helper()
	for _, s := range pl.Sites {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no site %s in the plan", name)
	return plan.Site{}
}

// step is a Step without its targets, for comparing the order.
type step struct {
	wave  int
	name  string
	kind  string
	force bool
}

func steps(s plan.Site) []step {
	var out []step
	for _, st := range s.Steps {
		out = append(out, step{st.Wave, st.Step, st.Kind, st.Force})
	}
	return out
}

// Each site's steps are read back from its rendering, in wave order, with
// the hook contract's targets: the table in docs/architecture.md.
func TestStepsPerRole(t *testing.T) {
	p, o := example(t)
	o.To, o.Force = "site-b", true
	pl, err := plan.Make(p, o)
	if err != nil {
		t.Fatal(err)
	}
	images := []string{"replicapool/wordpress/csi-vol-mysql", "replicapool/wordpress/csi-vol-wordpress"}

	passive := site(t, pl, "site-a")
	want := []step{{1, "hook access", "RBAC", false}, {1, "quiesce", "Job", false}, {2, "demote", "Job", false}, {3, "resync", "Job", false}}
	if got := steps(passive); !reflect.DeepEqual(got, want) || passive.Role != "passive" || passive.AppWave != 0 {
		t.Errorf("site-a (%s, app wave %d): %v, want passive, 0, %v", passive.Role, passive.AppWave, got, want)
	}
	if got := passive.Steps[0].Targets; len(got) != 6 || got[0] != "ServiceAccount/wordpress-rbd-dr-quiesce" || got[3] != "ServiceAccount/wordpress-rbd-dr-demote" {
		t.Errorf("the RBAC step lists %v", got)
	}
	if got := passive.Steps[1].Targets; !reflect.DeepEqual(got, []string{"mysql-pv-claim", "wp-pv-claim"}) || passive.Steps[1].Namespace != "wordpress" {
		t.Errorf("quiesce targets %v in %s", got, passive.Steps[1].Namespace)
	}
	if got := passive.Steps[2].Targets; !reflect.DeepEqual(got, images) || passive.Steps[2].Namespace != "wordpress" {
		t.Errorf("demote targets %v in %s", got, passive.Steps[2].Namespace)
	}

	active := site(t, pl, "site-b")
	want = []step{{2, "promote", "Job", true}}
	if got := steps(active); !reflect.DeepEqual(got, want) || active.Role != "active" || active.AppWave != 1 {
		t.Errorf("site-b (%s, app wave %d): %v, want active, 1, %v", active.Role, active.AppWave, got, want)
	}
}

// Planning a change leaves the caller's policy as it was loaded.
func TestMakeKeepsThePolicy(t *testing.T) {
	p, o := example(t)
	before := *p
	o.To, o.Force = "site-b", true
	pl, err := plan.Make(p, o)
	if err != nil {
		t.Fatal(err)
	}
	if pl.ActiveSite != "site-b" || !pl.ForcePromote {
		t.Errorf("the plan is for activeSite %s, forcePromote %t", pl.ActiveSite, pl.ForcePromote)
	}
	if p.ActiveSite != before.ActiveSite || p.ForcePromote != before.ForcePromote {
		t.Errorf("Make changed the caller's policy: activeSite %s, forcePromote %t", p.ActiveSite, p.ForcePromote)
	}
}

func TestChange(t *testing.T) {
	for _, c := range []struct {
		to    string
		force bool
		want  string
	}{
		{"", false, "none: site-a stays active"},
		{"site-a", false, "none: site-a stays active"},
		{"site-b", false, "planned relocation from site-a to site-b"},
		{"site-b", true, "forced failover from site-a to site-b"},
	} {
		p, o := example(t)
		o.To, o.Force = c.to, c.force
		pl, err := plan.Make(p, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(pl.Change, c.want) {
			t.Errorf("--to %q --force=%t: change %q, want %q", c.to, c.force, pl.Change, c.want)
		}
		forceWarned := len(pl.Warnings) > 0 && strings.HasPrefix(pl.Warnings[0], "forcePromote is true")
		if forceWarned != c.force {
			t.Errorf("--to %q --force=%t: warnings %q", c.to, c.force, pl.Warnings)
		}
	}
}

func TestUnknownTarget(t *testing.T) {
	p, o := example(t)
	o.To = "site-c"
	if _, err := plan.Make(p, o); err == nil || !strings.Contains(err.Error(), `--to "site-c" is not one of the sites (site-a, site-b)`) {
		t.Errorf("error %v", err)
	}
}

// Another app folder beside this one that declares one of its images is
// warned about; one that cannot be read is counted, not skipped silently.
func TestSharedImagesWarning(t *testing.T) {
	root := t.TempDir()
	_, src := example(t)
	for _, app := range []string{"shop", "blog", "broken"} {
		if err := os.CopyFS(filepath.Join(root, app), os.DirFS(src.AppDir)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "broken", config.FileName), []byte("kind: nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(filepath.Join(root, "blog"), root)
	if err != nil {
		t.Fatal(err)
	}
	src.RepoRoot, src.AppDir, src.Namespace = root, filepath.Join(root, "blog"), "wordpress"
	pl, err := plan.Make(p, src)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(pl.Warnings, "\n")
	for _, want := range []string{
		"replicapool/wordpress/csi-vol-mysql is also declared in shop/rbd-dr.yaml",
		"1 other rbd-dr.yaml file(s) beside this app could not be read",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
}

// The change is read against what the clusters run (o.Running), not the
// edited file itself.
func TestChangeAgainstRunning(t *testing.T) {
	for _, c := range []struct {
		runningSite  string
		runningForce bool
		site         string
		force        bool
		want         string
	}{
		{"site-a", false, "site-a", false, "none: site-a stays active"},
		{"site-a", false, "site-b", false, "planned relocation from site-a to site-b"},
		{"site-a", false, "site-b", true, "forced failover from site-a to site-b"},
		{"site-b", true, "site-b", false, "forcePromote back to false: site-b stays active"},
		{"site-b", false, "site-b", true, "forcePromote set: site-b stays active"},
	} {
		p, o := example(t)
		running := *p
		running.ActiveSite, running.ForcePromote = c.runningSite, c.runningForce
		p.ActiveSite, p.ForcePromote = c.site, c.force
		o.Running, o.Base = &running, "the last commit (abc1234)"
		pl, err := plan.Make(p, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(pl.Change, c.want) || pl.Base != o.Base {
			t.Errorf("running %s/%t, file %s/%t: change %q (base %q), want %q", c.runningSite, c.runningForce, c.site, c.force, pl.Change, pl.Base, c.want)
		}
	}
}

// With RADOS namespaces, an image is pool/namespace/image: two apps of one
// namespace on the same image are warned of (by their full target); apps of
// two teams that name the same pool and image, each in its own RADOS
// namespace, are not.
func TestSharedImagesInRadosNamespaces(t *testing.T) {
	root := t.TempDir()
	_, src := example(t)
	for _, app := range []string{"shop", "blog", "team-b"} {
		if err := os.CopyFS(filepath.Join(root, app), os.DirFS(src.AppDir)); err != nil {
			t.Fatal(err)
		}
	}
	// shop deploys to wordpress, as blog does; team-b to its own namespace.
	for app, ns := range map[string]string{"shop": "wordpress", "team-b": "team-b"} {
		file := filepath.Join(root, app, config.FileName)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, append(b, "apps:\n  namespace: "+ns+"\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	settings := *src.Settings
	settings.Namespaces = append([]config.TenantSetting(nil), settings.Namespaces...)
	for i := range settings.Namespaces {
		if settings.Namespaces[i].Namespace == "wordpress" {
			settings.Namespaces[i].RadosNamespace = "wp"
			other := settings.Namespaces[i]
			other.Namespace, other.RadosNamespace = "team-b", "team-b"
			settings.Namespaces = append(settings.Namespaces, other)
			break
		}
	}
	p, err := config.Load(filepath.Join(root, "blog"), root)
	if err != nil {
		t.Fatal(err)
	}
	src.RepoRoot, src.AppDir, src.Namespace, src.Settings = root, filepath.Join(root, "blog"), "wordpress", &settings
	pl, err := plan.Make(p, src)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(pl.Warnings, "\n")
	if !strings.Contains(all, "replicapool/wp/csi-vol-mysql is also declared in shop/rbd-dr.yaml") {
		t.Errorf("the same image in one RADOS namespace was not warned of:\n%s", all)
	}
	if strings.Contains(all, "team-b/rbd-dr.yaml") {
		t.Errorf("another team's image of the same name, in its own RADOS namespace, was taken for this one:\n%s", all)
	}
}
