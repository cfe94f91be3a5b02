package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/plan"
)

// fleet lays out one copy of the example per app under root/apps, each with
// images of its own in the namespace the example's settings grant, and
// returns root.
func fleet(t *testing.T, apps ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, app := range apps {
		dir := filepath.Join(root, "apps", app)
		if err := os.CopyFS(dir, os.DirFS(example)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "rbd-dr.yaml")
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc = bytes.ReplaceAll(doc, []byte("image: csi-vol-"), []byte("image: "+app+"-"))
		doc = append(doc, "apps:\n  namespace: wordpress\n"...)
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// files reads every rbd-dr.yaml of the fleet, by app.
func files(t *testing.T, root string, apps ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, app := range apps {
		b, err := os.ReadFile(filepath.Join(root, "apps", app, "rbd-dr.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		out[app] = string(b)
	}
	return out
}

// changedLines counts the lines that differ between two versions of a file
// with the same number of lines.
func changedLines(t *testing.T, before, after string) []string {
	t.Helper()
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	if len(a) != len(b) {
		t.Fatalf("the edit added or removed lines:\n%s\n---\n%s", before, after)
	}
	var changed []string
	for i := range a {
		if a[i] != b[i] {
			changed = append(changed, b[i])
		}
	}
	return changed
}

// One command moves every app under a tree: one line changed in each, one
// line of output per app, and a second run changes nothing.
func TestActivateAll(t *testing.T) {
	apps := []string{"blog", "shop", "wiki"}
	root := fleet(t, apps...)
	tree := filepath.Join(root, "apps")
	before := files(t, root, apps...)
	code, out, stderr := runIn(t, ".", nil, "activate", "site-b", "--all", tree, "--repo-root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	after := files(t, root, apps...)
	for _, app := range apps {
		changed := changedLines(t, before[app], after[app])
		if len(changed) != 1 || !strings.HasPrefix(changed[0], "activeSite: site-b ") {
			t.Errorf("%s: want the activeSite line alone changed, got %q", app, changed)
		}
		if want := "apps/" + app + "/rbd-dr.yaml: activeSite site-b (was site-a), forcePromote false (was false)\n"; !strings.Contains(out, want) {
			t.Errorf("no line %q in\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != len(apps)+1 || !strings.Contains(out, "`argocd-rbd-dr plan --all "+tree+"`") {
		t.Errorf("want a line per app and the review line:\n%s", out)
	}

	code, out, stderr = runIn(t, ".", nil, "activate", "site-b", "--all", tree, "--repo-root", root)
	if code != 0 || strings.Count(out, "unchanged: activeSite site-b, forcePromote false already") != len(apps) {
		t.Errorf("a second run: exit %d:\n%s%s", code, out, stderr)
	}
	for app, doc := range files(t, root, apps...) {
		if doc != after[app] {
			t.Errorf("%s changed on the second run", app)
		}
	}
}

// One app that may not move stops the whole change: every app that may not
// is named, with its reason, and no file is written.
func TestActivateAllIsAllOrNothing(t *testing.T) {
	apps := []string{"blog", "forced", "shop", "typo"}
	root := fleet(t, apps...)
	edit := func(app, old, new string) {
		path := filepath.Join(root, "apps", app, "rbd-dr.yaml")
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, []byte(old)) {
			t.Fatalf("%s has no %q", app, old)
		}
		if err := os.WriteFile(path, bytes.Replace(doc, []byte(old), []byte(new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("forced", "forcePromote: false", "forcePromote: true")
	edit("typo", "size: 20Gi", "size: twenty")
	before := files(t, root, apps...)
	tree := filepath.Join(root, "apps")
	code, out, stderr := runIn(t, ".", nil, "activate", "site-b", "--all", tree, "--repo-root", root)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{
		"2 of 4 apps under " + tree + " may not move to site-b; nothing changed",
		"apps/forced/rbd-dr.yaml says forcePromote: true",
		"apps/typo/rbd-dr.yaml is not valid as it is; fix it first",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	for _, app := range []string{"blog", "shop"} {
		if strings.Contains(stderr, "apps/"+app+"/") {
			t.Errorf("%s may move, yet is named:\n%s", app, stderr)
		}
	}
	for app, doc := range files(t, root, apps...) {
		if doc != before[app] {
			t.Errorf("%s changed", app)
		}
	}
	if code, _, stderr := runIn(t, ".", nil, "activate", "site-b", "--all", filepath.Join(root, "apps", "blog", "overlays"), "--repo-root", root); code != 1 || !strings.Contains(stderr, "no app folder under") {
		t.Errorf("a tree without apps: exit %d: %s", code, stderr)
	}
}

// Should a write fail half-way, the files written before it are put back.
func TestActivationsPutBackOnFailure(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.yaml")
	if err := os.WriteFile(first, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edits := []activation{
		{path: first, mode: 0o644, old: []byte("old\n"), new: []byte("new\n")},
		{path: filepath.Join(dir, "gone", "second.yaml"), mode: 0o644, old: []byte("old\n"), new: []byte("new\n")},
	}
	err := writeActivations(edits)
	if err == nil || !strings.Contains(err.Error(), "nothing changed") {
		t.Errorf("err = %v", err)
	}
	if b, _ := os.ReadFile(first); string(b) != "old\n" {
		t.Errorf("first.yaml holds %q after the failed change", b)
	}
}

// plan --all: every app's change in one view, the steps of every app and
// site, and the warnings with their app; as JSON, one plan per app.
func TestPlanAll(t *testing.T) {
	t.Setenv("GIT_DIR", t.TempDir()) // no commit: each file planned as it is
	apps := []string{"blog", "shop"}
	root := fleet(t, apps...)
	tree := filepath.Join(root, "apps")
	// shop also declares one of blog's images: a warning of both apps.
	shop := filepath.Join(tree, "shop", "rbd-dr.yaml")
	doc, _ := os.ReadFile(shop)
	if err := os.WriteFile(shop, bytes.Replace(doc, []byte("image: shop-mysql"), []byte("image: blog-mysql"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runIn(t, ".", nil, "plan", "--all", tree, "--repo-root", root, "--to", "site-b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"blog  apps/blog/rbd-dr.yaml  planned relocation from site-a to site-b",
		"shop  apps/shop/rbd-dr.yaml  planned relocation from site-a to site-b",
		"2 apps, 2 change",
		"blog  site-a  passive",
		"shop  site-b  active",
		"  - shop: replicapool/wordpress/blog-mysql is also declared in apps/blog/rbd-dr.yaml",
		"  - blog: replicapool/wordpress/blog-mysql is also declared in apps/shop/rbd-dr.yaml",
		"  - blog: claim wordpress/wp-pv-claim is also declared in apps/shop/rbd-dr.yaml, in the same namespace",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --all does not say %q:\n%s", want, out)
		}
	}
	code, out, _ = runIn(t, ".", nil, "plan", "--all", tree, "--repo-root", root)
	if code != 0 || !strings.Contains(out, "2 apps, 0 change") {
		t.Errorf("the steady state: exit %d:\n%s", code, out)
	}

	code, js, stderr := runIn(t, ".", nil, "plan", "--all", tree, "--repo-root", root, "-o", "json")
	var plans []plan.Plan
	if err := json.Unmarshal([]byte(js), &plans); code != 0 || err != nil || len(plans) != 2 || plans[0].App != "blog" || plans[1].App != "shop" {
		t.Errorf("-o json: exit %d, %v, %d plans: %s", code, err, len(plans), stderr)
	}
}

func TestPlanAllBadInput(t *testing.T) {
	t.Setenv("GIT_DIR", t.TempDir())
	apps := []string{"blog", "shop", "wiki"}
	root := fleet(t, apps...)
	tree := filepath.Join(root, "apps")
	for _, app := range []string{"blog", "wiki"} {
		path := filepath.Join(tree, app, "rbd-dr.yaml")
		doc, _ := os.ReadFile(path)
		if err := os.WriteFile(path, bytes.Replace(doc, []byte("pool: replicapool"), []byte("pool: otherpool"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runIn(t, ".", nil, "plan", "--all", tree, "--repo-root", root)
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"2 of 3 apps under " + tree + " cannot be planned", "apps/blog/rbd-dr.yaml", "apps/wiki/rbd-dr.yaml", "otherpool"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if code, _, stderr := runIn(t, ".", nil, "plan", "--all", tree, "--repo-root", root, "--namespace", "wordpress"); code != 1 || !strings.Contains(stderr, "with --all each app's apps.namespace is used") {
		t.Errorf("--namespace with --all: exit %d: %s", code, stderr)
	}
}

// With --log-format json the apps that cannot be planned are one JSON line,
// each in its problems list.
func TestPlanAllProblemsAsJSON(t *testing.T) {
	t.Setenv("GIT_DIR", t.TempDir())
	root := fleet(t, "blog", "shop")
	tree := filepath.Join(root, "apps")
	for _, app := range []string{"blog", "shop"} {
		path := filepath.Join(tree, app, "rbd-dr.yaml")
		doc, _ := os.ReadFile(path)
		if err := os.WriteFile(path, bytes.Replace(doc, []byte("pool: replicapool"), []byte("pool: otherpool"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runIn(t, ".", map[string]string{"ARGOCD_RBD_DR_LOG_FORMAT": "json"}, "plan", "--all", tree, "--repo-root", root)
	var line struct {
		Level, Msg string
		Problems   []string
	}
	if err := json.Unmarshal([]byte(stderr), &line); err != nil || code != 1 || out != "" || line.Level != "error" ||
		!strings.Contains(line.Msg, "2 of 2 apps") || len(line.Problems) != 2 || !strings.HasPrefix(line.Problems[0], "apps/blog/rbd-dr.yaml") {
		t.Errorf("exit %d, stderr %q (%v)", code, stderr, err)
	}
}
