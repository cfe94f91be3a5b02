package fullloop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	yamlv3 "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// app is an app folder under test, inside a git repository of its own.
// Everything the suite knows about the app comes from its rbd-dr.yaml and
// from what the plugin renders, never from constants.
type app struct {
	source string // the folder it was copied from, as given
	bin    string // the built argocd-rbd-dr
	repo   string // the git repository (its working tree)
	path   string // the app folder inside it
	policy *config.Policy
	// radosNamespace is the RADOS namespace the settings give the app's
	// namespace (loop.grant): its volumes' images are there.
	radosNamespace string
	settings       string // the platform's settings file the suite made (RBD_DR_SETTINGS)
	// oneMove: the app runs only the bootstrap and one relocation.
	oneMove bool
}

// dir is the app folder in the working tree.
func (a *app) dir() string { return filepath.Join(a.repo, filepath.FromSlash(a.path)) }

// name is the app folder's name: what the suite's messages call the app.
func (a *app) name() string { return filepath.Base(a.path) }

// sourceApps are the app folders RBD_DR_FULLLOOP_APP lists (separated by
// ":"), or the project's two examples: WordPress (Deployments) and the
// inventory (a StatefulSet with claim templates, and a CronJob).
func sourceApps(root string) []string {
	if dirs := filepath.SplitList(os.Getenv("RBD_DR_FULLLOOP_APP")); len(dirs) > 0 {
		return dirs
	}
	return []string{filepath.Join(root, "examples", "wordpress"), filepath.Join(root, "examples", "inventory")}
}

// sourceSettings is RBD_DR_FULLLOOP_SETTINGS or the project's example: the
// platform's settings that know every app's namespace.
func sourceSettings(root string) string {
	if f := os.Getenv("RBD_DR_FULLLOOP_SETTINGS"); f != "" {
		return f
	}
	return filepath.Join(root, "examples", "rbd-dr-settings.yaml")
}

// writeSuiteSettings writes the platform's settings for the suite's sites
// (file): each site's cluster and Ceph monitors are the suite's; nothing
// else changes, but for the namespaces entries in tenants (YAML), which are
// added: the platform onboarding a team.
func writeSuiteSettings(t *testing.T, src, file string, clusters, monitors map[string]string, tenants ...string) {
	t.Helper()
	body, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	body, _, err = siteSettings(body, clusters, monitors)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	// Added after the suite's rpo: the fleet keeps its own.
	if body, err = addTenants(body, tenants); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadSettings(file); err != nil {
		t.Fatalf("the settings under test (%s, made the suite's): %v", src, err)
	}
}

// newApp copies the app folder into a fresh git repository at repo and makes
// the first commit.
func newApp(t *testing.T, bin, src, repo, settingsFile string) *app {
	t.Helper()
	a := &app{source: src, bin: bin, repo: repo, path: "apps/" + filepath.Base(src), settings: settingsFile}
	if err := os.CopyFS(a.dir(), os.DirFS(src)); err != nil {
		t.Fatalf("copying the app folder %s: %v", src, err)
	}
	if err := a.load(); err != nil {
		t.Fatalf("the app under test is not valid: %v", err)
	}
	a.git(t, "init", "-q", "-b", "main")
	a.commit(t, "the app under test: "+filepath.Base(src))
	return a
}

// load reads the app's rbd-dr.yaml (again, after an edit) and names its
// volumes as the plugin does: in the RADOS namespace the settings give.
func (a *app) load() error {
	p, err := config.Load(a.dir(), a.repo)
	if err != nil {
		return err
	}
	for i := range p.Volumes {
		p.Volumes[i].Namespace = a.radosNamespace
	}
	a.policy = p
	return nil
}

// addTenants appends each YAML mapping in tenants to the settings'
// namespaces.
func addTenants(body []byte, tenants []string) ([]byte, error) {
	if len(tenants) == 0 {
		return body, nil
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	list := mapValue(doc.Content[0], "namespaces")
	if list == nil || list.Kind != yamlv3.SequenceNode {
		return nil, fmt.Errorf("no namespaces list to add a team to")
	}
	for _, ten := range tenants {
		var n yamlv3.Node
		if err := yamlv3.Unmarshal([]byte(ten), &n); err != nil {
			return nil, err
		}
		list.Content = append(list.Content, n.Content[0])
	}
	return yamlv3.Marshal(&doc)
}

// siteSettings sets sites[].cluster and sites[].monitors of each site named
// in clusters, and every namespace's rpo to suiteRPO. This is where the sites' API servers and Ceph monitors are
// declared to the plugin. It returns the old cluster URL -> new.
func siteSettings(body []byte, clusters, monitors map[string]string) ([]byte, map[string]string, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(body, &doc); err != nil {
		return nil, nil, err
	}
	sites := mapValue(doc.Content[0], "sites")
	if sites == nil {
		return nil, nil, fmt.Errorf("no sites")
	}
	urls, done := map[string]string{}, map[string]bool{}
	for _, s := range sites.Content {
		name := mapValue(s, "name")
		if name == nil {
			continue
		}
		url, ok := clusters[name.Value]
		if !ok {
			continue
		}
		cluster := mapValue(s, "cluster")
		mons := mapValue(s, "monitors")
		if cluster == nil || mons == nil {
			return nil, nil, fmt.Errorf("site %s has no cluster or monitors to point at the suite's", name.Value)
		}
		urls[cluster.Value] = url
		cluster.Value, cluster.Style = url, 0
		mons.Content = []*yamlv3.Node{{Kind: yamlv3.ScalarNode, Value: monitors[name.Value]}}
		done[name.Value] = true
	}
	for site := range clusters {
		if !done[site] {
			return nil, nil, fmt.Errorf("site %s is not in the settings", site)
		}
	}
	// The suite promises every namespace a one-minute recovery point, and
	// the lab runs a one-minute mirror snapshot schedule to keep it
	// (suiteRPO), so that the rpo scenario sees the check fail within
	// minutes.
	if tenants := mapValue(doc.Content[0], "namespaces"); tenants != nil {
		for _, t := range tenants.Content {
			if rpo := mapValue(t, "rpo"); rpo != nil {
				rpo.Value = suiteRPO
			} else if t.Kind == yamlv3.MappingNode {
				t.Content = append(t.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: "rpo"}, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: suiteRPO})
			}
		}
	}
	out, err := yamlv3.Marshal(&doc)
	return out, urls, err
}

// suiteRPO is the recovery point the suite's settings promise, and the
// interval of the lab's mirror snapshot schedule.
const suiteRPO = "1m"

func mapValue(m *yamlv3.Node, key string) *yamlv3.Node {
	if m == nil || m.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// siteOfMonitors is the site of the suite's settings whose monitors are
// monHost, as a Job's --peer-ceph-mon-host lists them.
func (a *app) siteOfMonitors(monHost string) (string, error) {
	s, err := config.LoadSettings(a.settings)
	if err != nil {
		return "", err
	}
	for _, site := range s.Sites {
		if strings.Join(site.Monitors, ",") == monHost {
			return site.Name, nil
		}
	}
	return "", fmt.Errorf("%s are the monitors of no site in %s", monHost, a.settings)
}

func (a *app) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = a.repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=fullloop", "GIT_AUTHOR_EMAIL=fullloop@rbd-dr.test",
		"GIT_COMMITTER_NAME=fullloop", "GIT_COMMITTER_EMAIL=fullloop@rbd-dr.test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits everything in the working tree and returns the revision.
func (a *app) commit(t *testing.T, msg string) string {
	t.Helper()
	a.git(t, "add", "-A")
	a.git(t, "commit", "-q", "--allow-empty", "-m", msg)
	return a.git(t, "rev-parse", "HEAD")
}

// url is the repository as Argo CD reaches it.
func (a *app) url() string { return "file://" + a.repo }

// sites are the app's site names, in file order.
func (a *app) sites() []string { return a.policy.SiteNames() }

// run runs the project's binary (render, activate, ...) on the app.
func (a *app) run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(a.bin, args...)
	cmd.Env = append(os.Environ(), config.SettingsEnv+"="+a.settings)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("argocd-rbd-dr %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// render is what the plugin gives one site in a role ("active", "passive"),
// or the app-of-apps when site is "".
func (a *app) render(t *testing.T, site, role string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := a.renderE(site, role)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func (a *app) renderE(site, role string) ([]*unstructured.Unstructured, error) {
	args := []string{"render", a.dir(), "--repo-root", a.repo}
	if site == "" {
		args = append(args, "--apps", "--repo-url", a.url(), "--revision", "main")
	} else {
		args = append(args, "--site", site, "--role", role)
	}
	cmd := exec.Command(a.bin, args...)
	cmd.Env = append(os.Environ(), config.SettingsEnv+"="+a.settings)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("argocd-rbd-dr %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return decode(out)
}

func decodeAll(t *testing.T, body []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decode(body []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(body), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding manifests: %w", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

// namespaces are the namespaces the rendered objects live in, sorted.
func namespaces(objs []*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" {
			set[ns] = true
		}
	}
	var out []string
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// loadPolicy reads the app's rbd-dr.yaml where it is, for its site names.
func loadPolicy(dir string) (*config.Policy, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return config.Load(abs, abs)
}
