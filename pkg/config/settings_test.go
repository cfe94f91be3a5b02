package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

const settings = `apiVersion: rbd-dr.io/v1alpha1
kind: Settings
images:
  hook: registry.test/argocd-rbd-dr:v0@sha256:1111111111111111111111111111111111111111111111111111111111111111
  ceph: registry.test/ceph@sha256:2222222222222222222222222222222222222222222222222222222222222222
sites:
  - name: site-a
    cluster: https://a.test:6443
    clusterID: rook-ceph
    nodeStageSecret: {name: rook-csi-rbd-node, namespace: rook-ceph}
    monitors: [192.0.2.1:6789]
  - name: site-b
    cluster: https://b.test:6443
    clusterID: rook-ceph
    nodeStageSecret: {name: rook-csi-rbd-node, namespace: rook-ceph}
    monitors: ["[2001:db8::1]:3300"]
namespaces:
  - namespace: web
    project: web
    pools: [replicapool]
    cephUser: web
    cephSecret: {name: rbd-dr-ceph-web}
    peerReader:
      user: web-peer
      secret: {name: rbd-dr-ceph-peer}
    rpo: 5m
`

func TestSettingsDefaults(t *testing.T) {
	s, err := config.ParseSettings([]byte(settings), "settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	site, ok := s.Site("site-b")
	if !ok || site.CSIDriver != config.DefaultCSIDriver || site.Monitors[0] != "[2001:db8::1]:3300" {
		t.Errorf("site-b: %+v", site)
	}
	tenant, err := s.Tenant("web")
	if err != nil || tenant.CephSecret.Key != "web" || !tenant.Allows("replicapool") || tenant.Allows("other") {
		t.Errorf("tenant web: %+v, %v", tenant, err)
	}
	if r := tenant.PeerReader; r == nil || r.User != "web-peer" || r.Secret != (config.SecretKeyRef{Name: "rbd-dr-ceph-peer", Key: "web-peer"}) {
		t.Errorf("tenant web's peerReader: %+v", r)
	}
	if _, err := s.Tenant("kube-system"); err == nil || !strings.Contains(err.Error(), `namespace "kube-system" may not use argocd-rbd-dr`) {
		t.Errorf("an unlisted namespace: %v", err)
	}
}

// Each bad settings document fails with one placed problem.
func TestSettingsProblems(t *testing.T) {
	cases := []struct{ name, old, new, want string }{
		{"tag instead of digest", "registry.test/ceph@sha256:2222222222222222222222222222222222222222222222222222222222222222", "registry.test/ceph:latest",
			`settings.yaml:5: images.ceph: "registry.test/ceph:latest" is not pinned by digest`},
		{"not a reference", "registry.test/ceph@sha256:2222222222222222222222222222222222222222222222222222222222222222", "'UPPER/ceph@sha256:22'",
			`settings.yaml:5: images.ceph: "UPPER/ceph@sha256:22" is not an image reference`},
		{"same cluster twice", "https://b.test:6443", "https://a.test:6443",
			`settings.yaml:13: sites[1].cluster: "https://a.test:6443" is already sites[0].cluster`},
		{"plain http", "https://b.test:6443", "http://b.test:6443", `sites[1].cluster: "http://b.test:6443" is not an API server URL`},
		{"monitor without a port", "192.0.2.1:6789", "192.0.2.1", `settings.yaml:11: sites[0].monitors[0]: "192.0.2.1" is not host:port`},
		{"namespace not a DNS label", "namespace: web", "namespace: Web_1", `settings.yaml:18: namespaces[0].namespace: "Web_1" is not a namespace name`},
		{"look-alike letter", "namespace: web", "namespace: wеb", `"w\u0435b" (has non-ASCII letters: U+0435 'е') is not a namespace name`},
		{"no pools", "pools: [replicapool]", "pools: []", `settings.yaml:20: namespaces[0].pools: is empty`},
		{"bad pool", "pools: [replicapool]", "pools: [-rf]", `namespaces[0].pools[0]: "-rf" is not a valid Ceph pool name`},
		{"client. prefix", "cephUser: web", "cephUser: client.web x", `namespaces[0].cephUser: "client.web x" is not a CephX user name`},
		{"unknown field", "    cephUser: web", "    cephKey: AQ==\n    cephUser: web", `settings.yaml:21: namespaces[0].cephKey: unknown field "cephKey"`},
		{"peer reader not a Ceph name", "user: web-peer", "user: web peer", `settings.yaml:24: namespaces[0].peerReader.user: "web peer" is not a CephX user name`},
		{"peer reader is the team's user", "user: web-peer", "user: web", `settings.yaml:24: namespaces[0].peerReader.user: "web" is also cephUser: the peer reader must be a separate, read-only user`},
		{"peer reader's key in the team's key", "secret: {name: rbd-dr-ceph-peer}", "secret: {name: rbd-dr-ceph-web, key: web}",
			`settings.yaml:25: namespaces[0].peerReader.secret: is cephSecret's Secret and key (rbd-dr-ceph-web, key web)`},
		{"peer reader's Secret not a name", "name: rbd-dr-ceph-peer", "name: Peer_Secret", `settings.yaml:25: namespaces[0].peerReader.secret.name: "Peer_Secret" is not a Secret name`},
		{"peer reader's key not a key", "secret: {name: rbd-dr-ceph-peer}", "secret: {name: rbd-dr-ceph-peer, key: 'a/b'}", `namespaces[0].peerReader.secret.key: "a/b" is not a Secret key`},
		{"peer reader without a user", "      user: web-peer\n", "", `settings.yaml:23: namespaces[0].peerReader.user: "" is not a CephX user name`},
		{"peer reader not a mapping", "    peerReader:\n      user: web-peer\n      secret: {name: rbd-dr-ceph-peer}", "    peerReader: web-peer",
			`settings.yaml:23: namespaces[0].peerReader: expected a mapping of fields (user, secret)`},
		{"rpo missing", "    rpo: 5m\n", "", `settings.yaml:18: namespaces[0].rpo: is missing; set the recovery point promised`},
		{"rpo not a duration", "rpo: 5m", "rpo: five minutes", `settings.yaml:26: namespaces[0].rpo: "five minutes" is not a duration`},
		{"rpo without a unit", "rpo: 5m", "rpo: 5", `namespaces[0].rpo: "5" is not a duration`},
		{"rpo under a minute", "rpo: 5m", "rpo: 30s", `settings.yaml:26: namespaces[0].rpo: "30s" is under 1m, the shortest interval of a mirror snapshot schedule`},
		{"rpo negative", "rpo: 5m", "rpo: -5m", `namespaces[0].rpo: "-5m" is under 1m`},
		{"rpo not whole minutes", "rpo: 5m", "rpo: 90s", `namespaces[0].rpo: "90s" is not a whole number of minutes`},
		{"wrong kind", "kind: Settings", "kind: FailoverPolicy", `settings.yaml:2: kind: is "FailoverPolicy"; set kind: Settings`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(settings, c.old, c.new, 1)
			if doc == settings {
				t.Fatalf("%q is not in the document", c.old)
			}
			_, err := config.ParseSettings([]byte(doc), "settings.yaml")
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant one problem containing %s", err, c.want)
			}
		})
	}
}

// Grant holds a team to the sites and pools the platform gave its namespace.
func TestGrant(t *testing.T) {
	s, err := config.ParseSettings([]byte(settings), "settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(t, strings.Replace(strings.Replace(good, "pool: replicapool", "pool: other-team", 1), "name: site-b", "name: site-x", 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Grant(p, "web")
	var ps config.Problems
	if !errors.As(err, &ps) || len(ps) != 2 ||
		!strings.Contains(ps[0].Error(), `apps/web/rbd-dr.yaml:7: sites[1].name: "site-x" is not a site of the platform's settings (site-a, site-b)`) ||
		!strings.Contains(ps[1].Error(), `apps/web/rbd-dr.yaml:11: volumes[0].pool: "other-team" is not a pool that namespace web may use (replicapool)`) {
		t.Errorf("got %v", err)
	}
	good, err := parse(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(good, "web"); err != nil {
		t.Errorf("a policy within its grant: %v", err)
	}
	if _, err := s.Grant(good, "other"); err == nil {
		t.Error("a namespace with no grant was allowed")
	}
}

func TestLoadSettings(t *testing.T) {
	if _, err := config.LoadSettings(""); err == nil || !strings.Contains(err.Error(), "no settings file") {
		t.Errorf("no path: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, config.MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadSettings(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("an oversized file: %v", err)
	}
	root, _ := filepath.Abs("../..")
	if _, err := config.LoadSettings(filepath.Join(root, "examples", "rbd-dr-settings.yaml")); err != nil {
		t.Errorf("the example: %v", err)
	}
}

// FuzzParseSettings: whatever the bytes, ParseSettings returns settings or
// Problems, never panics, and settings it returns are complete.
func FuzzParseSettings(f *testing.F) {
	f.Add([]byte(settings))
	f.Add([]byte("sites: [{name: a, monitors: [x]}]\nnamespaces: [{pools: [&p a, *p]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := config.ParseSettings(data, "settings.yaml")
		if err != nil {
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not Problems: %v", err)
			}
			return
		}
		if len(s.Sites) < 2 || s.Images.Hook == "" || s.Images.Ceph == "" {
			t.Fatalf("accepted incomplete settings: %+v", s)
		}
		for _, site := range s.Sites {
			if site.Cluster == "" || len(site.Monitors) == 0 || site.CSIDriver == "" {
				t.Fatalf("accepted an incomplete site: %+v", site)
			}
		}
		for _, n := range s.Namespaces {
			if len(n.Pools) == 0 || n.CephSecret.Key == "" || n.CephUser == "" {
				t.Fatalf("accepted an incomplete namespace: %+v", n)
			}
			if r := n.PeerReader; r != nil && (r.User == "" || r.User == n.CephUser || r.Secret.Name == "" || r.Secret.Key == "") {
				t.Fatalf("accepted an incomplete or unsafe peerReader: %+v", r)
			}
		}
	})
}

// twoTeams is settings with a second namespace, for the mistakes between
// namespaces and sites.
var twoTeams = settings + `  - namespace: shop
    project: shop
    pools: [shoppool]
    cephUser: shop
    cephSecret: {name: rbd-dr-ceph-shop}
    peerReader:
      user: shop-peer
      secret: {name: rbd-dr-ceph-peer}
    rpo: 5m
`

func TestSettingsMistakesBetweenTeamsAndSites(t *testing.T) {
	if _, err := config.ParseSettings([]byte(twoTeams), "settings.yaml"); err != nil {
		t.Fatalf("the two-team document: %v", err)
	}
	cases := []struct{ name, old, new, want string }{
		{"one cephUser for two namespaces", "    cephUser: shop\n", "    cephUser: web\n",
			`settings.yaml:30: namespaces[1].cephUser: "web" is already namespaces[0].cephUser: each namespace needs CephX users of its own`},
		{"a peer reader that is another namespace's writing user", "      user: shop-peer", "      user: web",
			`settings.yaml:33: namespaces[1].peerReader.user: "web" is already namespaces[0].cephUser`},
		{"one peer reader for two namespaces", "      user: shop-peer", "      user: web-peer",
			`settings.yaml:33: namespaces[1].peerReader.user: "web-peer" is already namespaces[0].peerReader.user`},
		{"both sites on the same monitors", `monitors: ["[2001:db8::1]:3300"]`, `monitors: [192.0.2.1:6789]`,
			`settings.yaml:16: sites[1].monitors[0]: "192.0.2.1:6789" is also a monitor of sites[0]: each site is its own Ceph cluster`},
		{"one pool for two namespaces", "    pools: [shoppool]\n", "    pools: [shoppool, replicapool]\n",
			`settings.yaml:29: namespaces[1].pools[1]: "replicapool" is also a pool of namespaces[0] (web), and neither has a radosNamespace: a key with 'profile rbd pool=replicapool' reaches every image of the pool`},
		{"the Ceph operator's namespace as a tenant", "  - namespace: shop\n", "  - namespace: rook-ceph\n",
			`settings.yaml:27: namespaces[1].namespace: "rook-ceph" is where sites[0] (site-a) keeps ceph-csi's node-stage Secret, the Ceph operator's namespace`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(twoTeams, c.old, c.new, 1)
			if doc == twoTeams {
				t.Fatalf("%q is not in the document", c.old)
			}
			_, err := config.ParseSettings([]byte(doc), "settings.yaml")
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant one problem containing %s", err, c.want)
			}
		})
	}
	// Every mistake of a file in one run: the two above (the second is also
	// namespace 1's own cephUser), an rpo and the monitors.
	doc := twoTeams
	for _, c := range cases[:2] {
		doc = strings.Replace(doc, c.old, c.new, 1)
	}
	doc = strings.Replace(doc, "rpo: 5m", "rpo: 30s", 1)
	doc = strings.Replace(doc, `monitors: ["[2001:db8::1]:3300"]`, `monitors: [192.0.2.1:6789]`, 1)
	_, err := config.ParseSettings([]byte(doc), "settings.yaml")
	var ps config.Problems
	if !errors.As(err, &ps) || len(ps) != 5 {
		t.Errorf("got %d problems, want all 5 at once: %v", len(ps), err)
	}
}

func TestSettingsHookPods(t *testing.T) {
	s, err := config.ParseSettings([]byte(settings), "settings.yaml")
	if err != nil || s.HookPods.Resources.Requests["memory"] != "128Mi" || s.HookPods.Resources.Limits["memory"] != "512Mi" {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	good := `hookPods:
  resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 256Mi}}
  nodeSelector: {node-role.kubernetes.io/infra: ""}
  tolerations: [{key: dedicated, operator: Equal, value: infra, effect: NoSchedule}]
  priorityClassName: rbd-dr-failover
  imagePullSecrets: [registry-pull]
namespaces:`
	if s, err := config.ParseSettings([]byte(strings.Replace(settings, "namespaces:", good, 1)), "settings.yaml"); err != nil || s.HookPods.PriorityClassName != "rbd-dr-failover" {
		t.Fatalf("%v", err)
	}
	cases := []struct{ old, new, want string }{
		{"memory: 64Mi", "memory: lots", `settings.yaml:18: hookPods.resources.requests.memory: "lots" is not a quantity`},
		{"cpu: 100m", "gpu: 1", `hookPods.resources.requests.gpu: is not a resource a hook pod can ask for`},
		{"operator: Equal", "operator: Matches", `hookPods.tolerations[0].operator: "Matches" is not Exists or Equal`},
		{"effect: NoSchedule", "effect: Never", `hookPods.tolerations[0].effect: "Never" is not NoSchedule`},
		{"priorityClassName: rbd-dr-failover", "priorityClassName: Top_Priority", `hookPods.priorityClassName: "Top_Priority" is not a PriorityClass name`},
		{"imagePullSecrets: [registry-pull]", "imagePullSecrets: [Bad_Secret]", `hookPods.imagePullSecrets[0]: "Bad_Secret" is not a Secret name`},
		{`{node-role.kubernetes.io/infra: ""}`, `{"bad key!": x}`, `hookPods.nodeSelector: "bad key!" is not a label key`},
	}
	for _, c := range cases {
		doc := strings.Replace(strings.Replace(settings, "namespaces:", good, 1), c.old, c.new, 1)
		_, err := config.ParseSettings([]byte(doc), "settings.yaml")
		var ps config.Problems
		if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant one problem containing %s", c.new, err, c.want)
		}
	}
}

// A missing settings file says what to create: the ConfigMap, and the key
// the sidecar reads, from the path it was looked for at.
func TestSettingsMissingSaysTheConfigMapKey(t *testing.T) {
	_, err := config.LoadSettings("/home/argocd/cmp-server/settings/settings.yaml")
	want := "creates ConfigMap argocd-rbd-dr-settings in Argo CD's namespace with the settings under the key settings.yaml (the sidecar mounts its keys in /home/argocd/cmp-server/settings"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant it to contain %s", err, want)
	}
}

// A custom kind that runs pods, taught by the settings: it joins the
// built-in ones; each mistake names its line and field.
func TestSettingsWorkloadKinds(t *testing.T) {
	good := `workloadKinds:
  - group: example.com
    version: v1
    kind: Database
    resource: databases
    podSpec: spec.template.spec
    replicas: spec.replicas
  - group: example.com
    version: v1beta1
    kind: Export
    resource: exports
    podSpec: spec.pod
    suspend: spec.paused
namespaces:`
	doc := strings.Replace(settings, "namespaces:", good, 1)
	s, err := config.ParseSettings([]byte(doc), "settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := s.Workloads()
	db, ok := kinds.Lookup("example.com", "Database")
	if !ok || db.Resource != "databases" || !db.CanStop() || string(db.StopPatch()) != `{"spec":{"replicas":0}}` {
		t.Errorf("Database: %+v", db)
	}
	if export, _ := kinds.Lookup("example.com", "Export"); string(export.StopPatch()) != `{"spec":{"paused":true}}` {
		t.Errorf("Export: %+v", export)
	}
	if _, ok := kinds.Lookup("apps", "Deployment"); !ok {
		t.Error("the built-in kinds are gone")
	}
	cases := []struct{ old, new, want string }{
		{"group: example.com\n    version: v1\n", "group: example\n    version: v1\n", `settings.yaml:18: workloadKinds[0].group: "example" is not a custom resource's API group`},
		{"resource: databases", "resource: Databases/x", `workloadKinds[0].resource: "Databases/x" is not an API resource name`},
		{"kind: Database", "kind: data-base", `workloadKinds[0].kind: "data-base" is not a kind name`},
		{"podSpec: spec.template.spec", "podSpec: spec.$(x)", `workloadKinds[0].podSpec: "spec.$(x)" is not a field path`},
		{"replicas: spec.replicas", "replicas: replicas", `workloadKinds[0].replicas: "replicas" is not a field path under spec`},
		{"suspend: spec.paused", "suspend: status.paused", `workloadKinds[1].suspend: "status.paused" is not a field path under spec`},
		{"replicas: spec.replicas", "suspend: spec.suspend\n    replicas: spec.replicas", `workloadKinds[0]: gives both replicas and suspend`},
		{"    replicas: spec.replicas\n", "", `workloadKinds[0]: gives neither replicas nor suspend`},
		{"kind: Export", "kind: Database", `workloadKinds[1].kind: example.com/Database is already workloadKinds[0]`},
		{"group: example.com\n    version: v1\n", "group: argoproj.io\n    version: v1\n", `Rollout`},
	}
	for _, c := range cases {
		bad := strings.Replace(doc, c.old, c.new, 1)
		if c.want == "Rollout" {
			bad = strings.Replace(strings.Replace(bad, "kind: Database", "kind: Rollout", 1), "resource: databases", "resource: rollouts", 1)
			c.want = "workloadKinds[0].kind: argoproj.io/Rollout is built in"
		}
		_, err := config.ParseSettings([]byte(bad), "settings.yaml")
		var ps config.Problems
		if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant one problem containing %s", c.new, err, c.want)
		}
	}
}

// withRadosNamespaces puts both teams of twoTeams in replicapool, each in a
// RADOS namespace of its own.
func withRadosNamespaces(t *testing.T) string {
	t.Helper()
	doc := twoTeams
	for _, r := range [][2]string{
		{"    pools: [replicapool]\n", "    pools: [replicapool]\n    radosNamespace: web\n    clusterIDs: {site-a: a-web, site-b: b-web}\n"},
		{"    pools: [shoppool]\n", "    pools: [replicapool]\n    radosNamespace: shop\n    clusterIDs: {site-a: a-shop, site-b: b-shop}\n"},
	} {
		if !strings.Contains(doc, r[0]) {
			t.Fatalf("%q is not in the document", r[0])
		}
		doc = strings.Replace(doc, r[0], r[1], 1)
	}
	return doc
}

// Two teams in one pool, each in its own RADOS namespace: accepted, and
// each team's targets, places and clusterIDs are its namespace's.
func TestSettingsRadosNamespaces(t *testing.T) {
	doc := withRadosNamespaces(t)
	s, err := config.ParseSettings([]byte(doc), "settings.yaml")
	if err != nil {
		t.Fatalf("two teams in their own RADOS namespaces of one pool: %v", err)
	}
	shop, err := s.Tenant("shop")
	if err != nil {
		t.Fatal(err)
	}
	siteB, _ := s.Site("site-b")
	if got := shop.Places(); len(got) != 1 || got[0] != "replicapool/shop" || shop.ClusterID(siteB) != "b-shop" {
		t.Errorf("shop: places %v, clusterID on site-b %q", got, shop.ClusterID(siteB))
	}
	p := &config.Policy{Volumes: []config.Volume{{Pool: "replicapool", Image: "db"}}}
	if _, err := s.Grant(p, "shop"); err != nil || p.Volumes[0].Spec() != "replicapool/shop/db" {
		t.Errorf("granted %s: %v", p.Volumes[0].Spec(), err)
	}
	web, _ := s.Tenant("web")
	if web.ClusterID(siteB) != "b-web" {
		t.Errorf("web's clusterID on site-b is %q", web.ClusterID(siteB))
	}

	cases := []struct{ name, old, new, want string }{
		{"the same RADOS namespace for both", "radosNamespace: shop", "radosNamespace: web",
			`namespaces[1].radosNamespace: "web" is also namespaces[0]'s (web) RADOS namespace in pool replicapool`},
		{"one team without a RADOS namespace", "    radosNamespace: shop\n    clusterIDs: {site-a: a-shop, site-b: b-shop}\n", "",
			`namespaces[1].pools[0]: "replicapool" is also a pool of namespaces[0] (web), and namespace shop has no radosNamespace`},
		{"a site without its clusterID", "{site-a: a-shop, site-b: b-shop}", "{site-a: a-shop}",
			`namespaces[1].clusterIDs: has no clusterID for site site-b`},
		{"a clusterID for a site that is not one", "{site-a: a-shop, site-b: b-shop}", "{site-a: a-shop, site-b: b-shop, site-c: c}",
			`namespaces[1].clusterIDs.site-c: "site-c" is not a site of these settings`},
		{"the site's own clusterID", "site-b: b-shop}", "site-b: rook-ceph}",
			`namespaces[1].clusterIDs.site-b: "rook-ceph" is the site's own clusterID, whose images are outside any RADOS namespace`},
		{"a bad RADOS namespace name", "radosNamespace: shop", "radosNamespace: \"-rf\"",
			`namespaces[1].radosNamespace: "-rf" is not a valid RADOS namespace name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(doc, c.old, c.new, 1)
			if bad == doc {
				t.Fatalf("%q is not in the document", c.old)
			}
			_, err := config.ParseSettings([]byte(bad), "settings.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant a problem containing %s", err, c.want)
			}
		})
	}
	// clusterIDs without a RADOS namespace say nothing, so they are refused.
	stray := strings.Replace(twoTeams, "    pools: [shoppool]\n", "    pools: [shoppool]\n    clusterIDs: {site-a: x, site-b: y}\n", 1)
	if _, err := config.ParseSettings([]byte(stray), "settings.yaml"); err == nil || !strings.Contains(err.Error(), "namespaces[1].clusterIDs: is set without radosNamespace") {
		t.Errorf("clusterIDs without radosNamespace: %v", err)
	}
}

// A pool two namespaces share is accepted only when sharedPools names it.
func TestSettingsSharedPools(t *testing.T) {
	shared := strings.Replace(twoTeams, "    pools: [shoppool]\n", "    pools: [shoppool, replicapool]\n", 1)
	if _, err := config.ParseSettings([]byte(shared), "settings.yaml"); err == nil {
		t.Fatal("a shared pool was accepted without sharedPools")
	}
	s, err := config.ParseSettings([]byte("sharedPools: [replicapool]\n"+shared), "settings.yaml")
	if err != nil || len(s.SharedPools) != 1 {
		t.Errorf("with sharedPools: %v", err)
	}
	if _, err := config.ParseSettings([]byte("sharedPools: [replicapool, \"bad pool\"]\n"+shared), "settings.yaml"); err == nil || !strings.Contains(err.Error(), `settings.yaml:1: sharedPools[1]: "bad pool" is not a valid Ceph pool name`) {
		t.Errorf("a bad name in sharedPools: %v", err)
	}
}

// forceUser: a user and key of its own, in no other namespace.
func TestSettingsForceUser(t *testing.T) {
	with := strings.Replace(settings, "    rpo: 5m\n", "    rpo: 5m\n    forceUser: {user: web-force, secret: {name: rbd-dr-ceph-web-force}}\n", 1)
	s, err := config.ParseSettings([]byte(with), "settings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	web, _ := s.Tenant("web")
	if got := web.KeyFor(true); got.User != "web-force" || got.Secret.Key != "web-force" {
		t.Errorf("a forced Job's key: %+v", got)
	}
	if got := web.KeyFor(false); got.User != "web" {
		t.Errorf("a planned Job's key: %+v", got)
	}
	for _, c := range []struct{ old, new, want string }{
		{"user: web-force", "user: web", `namespaces[0].forceUser.user: "web" is also cephUser`},
		{"secret: {name: rbd-dr-ceph-web-force}}", "secret: {name: rbd-dr-ceph-web, key: web}}", "namespaces[0].forceUser.secret: is cephSecret's Secret and key"},
		{"user: web-force", "user: web-peer", "namespaces[0].forceUser: is the peer reader's user or Secret key"},
		{"user: web-force", "user: \"-x\"", `namespaces[0].forceUser.user: "-x" is not a CephX user name`},
		// the peer reader's Secret key, its key named by default (user)
		{"secret: {name: rbd-dr-ceph-web-force}}", "secret: {name: rbd-dr-ceph-peer, key: web-peer}}", "namespaces[0].forceUser: is the peer reader's user or Secret key"},
	} {
		bad := strings.Replace(with, c.old, c.new, 1)
		if _, err := config.ParseSettings([]byte(bad), "settings.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: %v, want %q", c.old, c.new, err, c.want)
		}
	}
	// One forceUser for two namespaces.
	two := strings.Replace(twoTeams, "    rpo: 5m\n", "    rpo: 5m\n    forceUser: {user: team-force, secret: {name: f}}\n", 2)
	if _, err := config.ParseSettings([]byte(two), "settings.yaml"); err == nil || !strings.Contains(err.Error(), `namespaces[1].forceUser.user: "team-force" is already namespaces[0].forceUser.user`) {
		t.Errorf("a forceUser shared by two namespaces: %v", err)
	}
}
