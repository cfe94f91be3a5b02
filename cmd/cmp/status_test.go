package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// statusArgs runs status on testdata/status/apps/shop with the rbd stand-in
// that answers from Ceph 16.2's recordings.
func statusArgs(t *testing.T, extra ...string) []string {
	t.Helper()
	fake, err := filepath.Abs("testdata/status/rbd")
	if err != nil {
		t.Fatal(err)
	}
	settings, _ := filepath.Abs("testdata/settings.yaml")
	return append([]string{"status", "testdata/status/apps/shop", "--rbd", fake, "--settings", settings, "--namespace", "shop"}, extra...)
}

func TestStatusPerSiteAndImage(t *testing.T) {
	code, out, stderr := runIn(t, ".", nil, statusArgs(t, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Images []struct {
			App, Namespace, Site, Image, Role, Level, LastCopyFrom string
			RPOSeconds                                             float64 `json:"rpoSeconds"`
			ScheduleSeconds                                        float64 `json:"scheduleSeconds"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Images) != 2 {
		t.Fatalf("%d rows, want one per site: %s", len(doc.Images), out)
	}
	a, b := doc.Images[0], doc.Images[1]
	if a.Site != "site-a" || a.Role != "primary" || b.Site != "site-b" || b.Role != "non-primary" || a.Image != "replicapool/img2" ||
		a.App != "shop" || a.Namespace != "shop" || a.RPOSeconds != 300 || a.ScheduleSeconds != 120 || a.LastCopyFrom != "status" {
		t.Errorf("%+v\n%+v", a, b)
	}
	// The recordings are from 2026-12-05 09:16: long past 3x five minutes.
	if a.Level != "critical" || b.Level != "critical" {
		t.Errorf("levels %s, %s; want critical for a copy that old", a.Level, b.Level)
	}

	code, out, _ = runIn(t, ".", nil, statusArgs(t, "-o", "prometheus")...)
	if code != 0 || !strings.Contains(out, `rbd_dr_rpo_level{app="shop",image="replicapool/img2",level="critical",namespace="shop",site="site-a"} 1`) {
		t.Errorf("prometheus: exit %d\n%s", code, out)
	}
	code, out, _ = runIn(t, ".", nil, statusArgs(t)...)
	if code != 0 || !strings.HasPrefix(out, "APP") || strings.Count(out, "\n") != 3 {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	// Every app under a tree.
	args := statusArgs(t, "--all")
	args[1] = "testdata/status/apps"
	if code, out, stderr := runIn(t, ".", nil, args...); code != 0 || strings.Count(out, "\n") != 3 {
		t.Errorf("--all: exit %d\n%s%s", code, out, stderr)
	}
}

// Bad input: one line naming what is wrong, exit 1, nothing on stdout.
func TestStatusBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		deny bool
		want string
	}{
		{"unknown app namespace", statusArgs(t, "--namespace", "nobody"), false, `namespace "nobody" may not use argocd-rbd-dr: it is not under namespaces in the platform's settings`},
		{"unknown output", statusArgs(t, "-o", "yaml"), false, `--output "yaml": use table, json or prometheus`},
		{"no schedule cap", statusArgs(t), true, "Ceph user client.shop may not read the mirror snapshot schedules: give it the cap mgr 'profile rbd pool=<pool>'"},
		{"no app under the tree", append(statusArgs(t, "--all")[:1], append([]string{"testdata/status/apps/shop/overlays"}, statusArgs(t, "--all")[2:]...)...), false, "no app folder under testdata/status/apps/shop/overlays: none holds rbd-dr.yaml"},
		{"not an app folder", append(statusArgs(t)[:1], append([]string{"testdata/status/apps"}, statusArgs(t)[2:]...)...), false, "rbd-dr.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.deny {
				t.Setenv("RBD_FAKE_DENY", "1")
			}
			code, out, stderr := runIn(t, ".", nil, c.args...)
			if code != 1 || out != "" || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout, one line with %q", code, out, stderr, c.want)
			}
		})
	}
}

// An app in a RADOS namespace: status reads its images there
// (pool/namespace/image), as the Jobs do.
func TestStatusReadsTheRadosNamespace(t *testing.T) {
	body, err := os.ReadFile("testdata/settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tenant := "  - namespace: shop\n    project: shop\n    pools: [replicapool]\n"
	if !strings.Contains(string(body), tenant) {
		t.Fatalf("testdata/settings.yaml no longer has %q", tenant)
	}
	withNS := strings.Replace(string(body), tenant, tenant+"    radosNamespace: shop\n    clusterIDs: {site-a: ns-a, site-b: ns-b}\n", 1)
	settings := filepath.Join(t.TempDir(), "settings.yaml")
	if err := os.WriteFile(settings, []byte(withNS), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RBD_FAKE_IMAGE", "replicapool/shop/img2")
	args := statusArgs(t, "-o", "json")
	for i := range args {
		if args[i] == "--settings" {
			args[i+1] = settings
		}
	}
	code, out, stderr := runIn(t, ".", nil, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Images []struct{ Site, Image, Role, Error string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Images) != 2 {
		t.Fatalf("%d rows, want one per site: %s", len(doc.Images), out)
	}
	for _, img := range doc.Images {
		if img.Image != "replicapool/shop/img2" || img.Role == "" || img.Error != "" {
			t.Errorf("%s: %+v, want replicapool/shop/img2 read there", img.Site, img)
		}
	}
}
