package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

const good = `apiVersion: rbd-dr.io/v1alpha1
kind: FailoverPolicy
activeSite: site-a
sites:
  - name: site-a
    overlay: overlays/site-a
  - name: site-b
    overlay: ../shared/b
volumes:
  - pvc: data
    pool: replicapool
    image: csi-vol-data
    size: 10Gi
`

func parse(t *testing.T, doc string) (*config.Policy, error) {
	t.Helper()
	return config.Parse([]byte(doc), config.Options{DisplayName: "apps/web/rbd-dr.yaml", AppDir: "/repo/apps/web", RepoRoot: "/repo"})
}

func TestDefaults(t *testing.T) {
	p, err := parse(t, good)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Site("site-a")
	if a.Overlay != "overlays/site-a" {
		t.Errorf("site defaults: %+v", a)
	}
	if p.Name != "web" {
		t.Errorf("name defaults to the folder: got %q", p.Name)
	}
	v := p.Volumes[0]
	if v.Quantity.String() != "10Gi" || v.ImageFeatures != "layering" || v.FSType != "ext4" || v.Spec() != "replicapool/csi-vol-data" {
		t.Errorf("volume defaults: %+v", v)
	}
	h := p.Hooks
	if *h.BackoffLimit != 2 || *h.ActiveDeadlineSeconds != 1800 || h.StepTimeout != 15*time.Minute || h.Parallelism != 20 {
		t.Errorf("hook defaults: %+v", h)
	}
	if p.ForcePromote {
		t.Error("forcePromote must default to false")
	}
}

// Each bad document must fail with one problem that names the line, the
// field and what is wrong.
func TestProblemsArePlaced(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"unknown top-level field", strings.Replace(good, "kind: FailoverPolicy", "kind: FailoverPolicy\nactivesite: site-b", 1),
			`apps/web/rbd-dr.yaml:3: activesite: unknown field "activesite"; the fields here are apiVersion, kind, name, activeSite`},
		{"unknown site field", strings.Replace(good, "    overlay: overlays/site-a", "    clusterURL: x\n    overlay: overlays/site-a", 1),
			`apps/web/rbd-dr.yaml:6: sites[0].clusterURL: unknown field "clusterURL"; the fields here are name, overlay`},
		{"a field that moved to the settings", strings.Replace(good, "    overlay: overlays/site-a", "    cluster: https://a.example.com:6443\n    overlay: overlays/site-a", 1),
			`apps/web/rbd-dr.yaml:6: sites[0].cluster: is no longer set here: the platform team sets it in argocd-rbd-dr's settings file (sites[].cluster); remove it from rbd-dr.yaml`},
		{"wrong type", strings.Replace(good, "activeSite: site-a", "activeSite: site-a\nforcePromote: yes", 1),
			`apps/web/rbd-dr.yaml:4: forcePromote: expected true or false, found the string "yes"`},
		{"bool written in capitals", strings.Replace(good, "activeSite: site-a", "activeSite: site-a\nforcePromote: True", 1),
			`apps/web/rbd-dr.yaml:4: forcePromote: expected true or false, found the boolean True`},
		{"number where a list goes", good + "hooks:\n  parallelism: [1]\n",
			`apps/web/rbd-dr.yaml:15: hooks.parallelism: expected a whole number, found a list`},
		{"key given twice", strings.Replace(good, "activeSite: site-a", "activeSite: site-a\nactiveSite: site-b", 1),
			`apps/web/rbd-dr.yaml:4: activeSite: is given twice (first on line 3); keep one`},
		{"key given twice through a merge", good + "hooks: &h\n  timeout: 1m\napps:\n  <<: {namespace: x}\n  namespace: y\n",
			`apps/web/rbd-dr.yaml:18: apps.namespace: is given twice (first on line 17)`},
		{"merge of a scalar", good + "apps:\n  <<: x\n",
			`apps/web/rbd-dr.yaml:15: apps: a merge (<<) must name a mapping, found the string "x"`},
		{"list where a mapping goes", good + "hooks: [a]\n",
			`apps/web/rbd-dr.yaml:14: hooks: expected a mapping of fields (backoffLimit, activeDeadlineSeconds,`},
		{"active site not a site", strings.Replace(good, "activeSite: site-a", "activeSite: site-c", 1),
			`apps/web/rbd-dr.yaml:3: activeSite: "site-c" is not one of the sites (site-a, site-b)`},
		{"active site missing", strings.Replace(good, "activeSite: site-a\n", "", 1),
			`apps/web/rbd-dr.yaml: activeSite: is missing`},
		{"duplicate site", strings.Replace(good, "name: site-b", "name: site-a", 1),
			`apps/web/rbd-dr.yaml:7: sites[1].name: "site-a" is already sites[0]`},
		{"one site", strings.Replace(good, "  - name: site-b\n    overlay: ../shared/b\n", "", 1),
			`apps/web/rbd-dr.yaml:4: sites: lists 1 site(s)`},
		{"bad pool name", strings.Replace(good, "pool: replicapool", "pool: -rf", 1),
			`apps/web/rbd-dr.yaml:11: volumes[0].pool: "-rf" is not a valid Ceph pool name`},
		{"image with a slash", strings.Replace(good, "image: csi-vol-data", "image: a/b", 1),
			`apps/web/rbd-dr.yaml:12: volumes[0].image: "a/b" is not a valid Ceph image name`},
		{"duplicate image", good + "  - pvc: other\n    pool: replicapool\n    image: csi-vol-data\n    size: 1Gi\n",
			`apps/web/rbd-dr.yaml:16: volumes[1].image: replicapool/csi-vol-data is already volumes[0]`},
		{"size not whole bytes", strings.Replace(good, "size: 10Gi", "size: 20m", 1),
			`apps/web/rbd-dr.yaml:13: volumes[0].size: "20m" is not a whole number of bytes (m means thousandths)`},
		{"look-alike letter", strings.Replace(good, "activeSite: site-a", "activeSite: site-\u0430", 1),
			`apps/web/rbd-dr.yaml:3: activeSite: "site-\u0430" (has non-ASCII letters: U+0430 'а') is not one of the sites (site-a, site-b)`},
		{"unprotected without a reason", good + "unprotected:\n  - pvc: cache\n",
			`apps/web/rbd-dr.yaml:15: unprotected[0].reason: is missing`},
		{"unprotected and protected", good + "unprotected:\n  - {pvc: data, reason: x}\n",
			`apps/web/rbd-dr.yaml:15: unprotected[0].pvc: "data" is volumes[0].pvc: a claim is either mirrored or not`},
		{"size not a quantity", strings.Replace(good, "size: 10Gi", "size: 10GB", 1),
			`apps/web/rbd-dr.yaml:13: volumes[0].size: "10GB" is not a Kubernetes quantity`},
		{"overlay leaves the repository", strings.Replace(good, "overlay: ../shared/b", "overlay: ../../../etc", 1),
			`apps/web/rbd-dr.yaml:8: sites[1].overlay: "../../../etc" leaves the repository`},
		{"absolute overlay", strings.Replace(good, "overlay: ../shared/b", "overlay: /etc", 1),
			`sites[1].overlay: "/etc" is absolute`},
		{"wrong apiVersion", strings.Replace(good, "rbd-dr.io/v1alpha1", "v1", 1),
			`apps/web/rbd-dr.yaml:1: apiVersion: is "v1"; set apiVersion: rbd-dr.io/v1alpha1`},
		{"timeout not shorter than deadline", good + "hooks:\n  timeout: 2h\n",
			`hooks.timeout: 2h0m0s is not shorter than hooks.activeDeadlineSeconds`},
		{"not YAML", "sites: [", `apps/web/rbd-dr.yaml:1: not valid YAML`},
		{"empty", "", `apps/web/rbd-dr.yaml: the file is empty`},
		{"two documents", good + "---\nkind: x\n", `a second YAML document`},
		{"a list", "- a\n", `expected a mapping`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.doc)
			if err == nil {
				t.Fatal("no error")
			}
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %s\nwant it to contain\n  %s", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// The line of a syntax error is the line a person must look at.
func TestSyntaxErrorLines(t *testing.T) {
	for doc, want := range map[string]string{
		"a: 1\nb: 2\nc: [x\nd: 4\n": ":3: not valid YAML: did not find expected ',' or ']'",
		"a: 1\nb: 2\nc: {x\n":       ":3: not valid YAML: did not find expected ',' or '}'",
		"a: 1\nb: 2\n c: 3\n":       ":3: not valid YAML: mapping values are not allowed",
		"a: 1\nb: 2\n\tc: 3\n":      ":3: not valid YAML: found a tab character",
		"a: 1\nb: 2\nc: \"x\n":      ":3: not valid YAML: found unexpected end of stream",
		"a: 1\nb: 2\n- c\n":         ":3: not valid YAML: did not find expected key",
	} {
		_, err := parse(t, doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %s", doc, err, want)
		}
	}
}

// Aliases, merges and nulls decode as yaml.v3 would decode them.
func TestAliasesMergesAndNulls(t *testing.T) {
	doc := good + "hooks:\n  timeout: &t 1m\n  parallelism: ~\napps:\n  <<: &r {namespace: team}\n  retry: {backoff: *t}\n"
	p, err := parse(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hooks.StepTimeout != time.Minute || p.Hooks.Parallelism != config.DefaultParallelism || p.Apps.Namespace != "team" || p.Apps.Retry.Backoff != "1m" {
		t.Errorf("decoded %+v %+v", p.Hooks, p.Apps)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	doc := strings.NewReplacer("activeSite: site-a", "activeSite: nowhere", "size: 10Gi", "size: lots", "pool: replicapool", "pool: a b").Replace(good)
	_, err := parse(t, doc)
	var ps config.Problems
	if !errors.As(err, &ps) || len(ps) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "3 problems: ") {
		t.Errorf("summary: %s", err)
	}
}

func TestLoadNamesTheFileInTheRepository(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "apps", "web")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(app, root)
	if err == nil || !strings.Contains(err.Error(), "apps/web/rbd-dr.yaml: not found") {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(app, config.FileName), []byte(strings.Replace(good, "size: 10Gi", "size: x", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(app, root)
	if err == nil || !strings.HasPrefix(err.Error(), "apps/web/rbd-dr.yaml:13: volumes[0].size") {
		t.Fatalf("bad size: %v", err)
	}
}

func TestExampleIsValid(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(filepath.Join(root, "examples", "wordpress"), root)
	if err != nil {
		t.Fatal(err)
	}
	if p.ActiveSite != "site-a" || len(p.Sites) != 2 || len(p.Volumes) != 2 {
		t.Errorf("unexpected example: %+v", p)
	}
}

// FuzzParse: whatever the bytes, Parse returns a policy or Problems, never
// panics, and a policy it returns is complete.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(good + "hooks:\n  timeout: 1m\n  parallelism: 2\n  backoffLimit: 1\n"))
	f.Add([]byte("activeSite: [a, {b: c}]\n"))
	f.Add([]byte("sites:\n  - name: &x a\n  - name: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := config.Parse(data, config.Options{AppDir: "/repo/app", RepoRoot: "/repo"})
		if err != nil {
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not Problems: %v", err)
			}
			return
		}
		if _, ok := p.Site(p.ActiveSite); !ok || len(p.Volumes) == 0 || p.Hooks.StepTimeout <= 0 {
			t.Fatalf("accepted an incomplete policy: %+v", p)
		}
		for _, v := range p.Volumes {
			if !rbd.ValidName(v.Pool) || !rbd.ValidName(v.Image) || v.Quantity.Sign() <= 0 {
				t.Fatalf("accepted a bad volume: %+v", v)
			}
		}
	})
}

// rbd-dr.yaml is the team's file: it is read through the repository's
// read-only view, so a link out of the repository, to a device (which would
// never end) or a huge file is refused at once.
func TestLoadStaysInTheRepository(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "repo")
	app := filepath.Join(root, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "outside.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(app, config.FileName)
	for target, want := range map[string]string{
		"/dev/zero":          "app/rbd-dr.yaml: a link that leads outside the repository",
		"../../outside.yaml": "app/rbd-dr.yaml: a link that leads outside the repository",
	} {
		os.Remove(policy)
		if err := os.Symlink(target, policy); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(app, root); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("linked to %s: %v, want %q", target, err, want)
		}
	}
	os.Remove(policy)
	if err := os.WriteFile(policy, []byte(good+strings.Repeat("#", config.MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(app, root); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a huge file: %v", err)
	}
}
