package manifests_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	argocommon "github.com/argoproj/argo-cd/v2/common"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	argolua "github.com/argoproj/argo-cd/v2/util/lua"
	"github.com/argoproj/argo-cd/v2/util/settings"
	"github.com/argoproj/gitops-engine/pkg/health"
	log "github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/internal/testutil"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

const (
	namespace     = "argocd" // where the test installs Argo CD, as its docs do
	sidecarName   = "rbd-dr"
	configMapName = "argocd-rbd-dr-plugin"
	// settingsConfigMap is the platform's settings, mounted by name.
	settingsConfigMap = config.SettingsConfigMap
	settingsDir       = "/home/argocd/cmp-server/settings"
	healthKey         = "resource.customizations.health.argoproj.io_Application"
	cronJobHealthKey  = "resource.customizations.health.batch_CronJob"
	pluginFile        = "plugin.yaml"
)

// manifests/plugin.yaml is a copy (kustomize reads nothing outside its folder);
// the one source is plugin/plugin.yaml, itself generated from pkg/cmpenv.
func TestPluginYAMLIsACopyOfPluginFolder(t *testing.T) {
	testutil.Golden(t, pluginFile, readFile(t, filepath.Join("..", "plugin", pluginFile)))
}

// The folders alone, as `kustomize build manifests` and
// `kustomize build manifests/settings` and `manifests/tenant` print them.
func TestBuildGolden(t *testing.T) {
	for dir, golden := range goldens {
		t.Run(dir, func(t *testing.T) {
			got := asYAML(t, build(t, dir))
			testutil.Golden(t, golden, got)
		})
	}
}

var goldens = map[string]string{
	".":        filepath.Join("testdata", "build.golden.yaml"),
	"settings": filepath.Join("testdata", "settings.golden.yaml"),
	"tenant":   filepath.Join("testdata", "tenant.golden.yaml"),
}

// The kustomize CLI (v5.4.2, on the same kustomize API) reads the folders the
// same way, with its default load restrictor.
func TestKustomizeCLIAgrees(t *testing.T) {
	bin := testutil.Tool(t, "kustomize", "make tools (go install sigs.k8s.io/kustomize/kustomize/v5@v5.4.2)")
	for dir, golden := range goldens {
		t.Run(dir, func(t *testing.T) {
			out, err := exec.Command(bin, "build", dir).Output()
			if err != nil {
				t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr(err))
			}
			if want := readFile(t, golden); !bytes.Equal(out, want) {
				t.Errorf("kustomize build %s differs from %s:\n%s", dir, golden, out)
			}
		})
	}
}

// The proof: Argo CD's own install.yaml (the version go.mod pins) in
// namespace argocd, with this folder as a component, gets the sidecar, the
// plugin ConfigMap and the health check, and nothing else changes.
func TestAddsThePluginToArgoCDInstall(t *testing.T) {
	tree := argoCDTree(t)
	before := byID(t, build(t, filepath.Join(tree, "argocd-only")))
	after := byID(t, build(t, filepath.Join(tree, "with-rbd-dr")))

	// The plugin ConfigMap: generated, hashed, in Argo CD's namespace, and
	// carrying plugin/plugin.yaml byte for byte.
	var cm corev1.ConfigMap
	cmID := ""
	for id, y := range after {
		if _, ok := before[id]; !ok {
			if cmID != "" {
				t.Fatalf("more than one new object: %s and %s", cmID, id)
			}
			cmID = id
			decodeStrict(t, y, &cm)
		}
	}
	if cm.Kind != "ConfigMap" || !strings.HasPrefix(cm.Name, configMapName+"-") || len(cm.Name) <= len(configMapName)+1 {
		t.Fatalf("the new object is %s %q, want the ConfigMap %s-<hash>", cm.Kind, cm.Name, configMapName)
	}
	if cm.Namespace != namespace {
		t.Errorf("ConfigMap namespace = %q, want %q", cm.Namespace, namespace)
	}
	if got, want := cm.Data[pluginFile], readFile(t, filepath.Join("..", "plugin", pluginFile)); got != string(want) {
		t.Errorf("ConfigMap %s differs from plugin/plugin.yaml:\n%s", pluginFile, got)
	}

	// The repo-server: Argo CD's container untouched, plus our sidecar.
	depID := "Deployment.apps/argocd-repo-server." + namespace
	var was, dep appsv1.Deployment
	decodeStrict(t, before[depID], &was)
	decodeStrict(t, after[depID], &dep)
	pod, oldPod := dep.Spec.Template.Spec, was.Spec.Template.Spec
	if len(pod.Containers) != len(oldPod.Containers)+1 {
		t.Fatalf("containers: %d, want Argo CD's %d plus the sidecar", len(pod.Containers), len(oldPod.Containers))
	}
	for _, c := range oldPod.Containers {
		if got := container(pod.Containers, c.Name); got == nil || !reflect.DeepEqual(*got, c) {
			t.Errorf("Argo CD's container %q changed or is gone", c.Name)
		}
	}
	if !reflect.DeepEqual(pod.InitContainers, oldPod.InitContainers) {
		t.Error("initContainers changed")
	}
	for _, v := range oldPod.Volumes {
		if got := volume(pod.Volumes, v.Name); got == nil || !reflect.DeepEqual(*got, v) {
			t.Errorf("Argo CD's volume %q changed or is gone", v.Name)
		}
	}
	side := container(pod.Containers, sidecarName)
	if side == nil {
		t.Fatalf("no container %q", sidecarName)
	}
	checkSidecar(t, side, pod, cm.Name)

	// argocd-cm: Argo CD's labels kept, the Application health check added.
	cmKey := "ConfigMap/argocd-cm." + namespace
	var argocdCM, oldArgocdCM corev1.ConfigMap
	decodeStrict(t, after[cmKey], &argocdCM)
	decodeStrict(t, before[cmKey], &oldArgocdCM)
	if !reflect.DeepEqual(argocdCM.Labels, oldArgocdCM.Labels) {
		t.Errorf("argocd-cm labels changed: %v", argocdCM.Labels)
	}
	checkHealthLua(t, argocdCM.Data[healthKey])
	checkArgoCDReadsHealthCheck(t, &argocdCM)
	checkCronJobHealth(t, &argocdCM)

	// Nothing else moved.
	for id, y := range before {
		if id != depID && id != cmKey && after[id] != y {
			t.Errorf("%s changed", id)
		}
	}
	if len(after) != len(before)+1 {
		t.Errorf("objects: %d after, %d before; want one more (the plugin ConfigMap)", len(after), len(before))
	}
}

func checkSidecar(t *testing.T, c *corev1.Container, pod corev1.PodSpec, cmName string) {
	t.Helper()
	// The hook Jobs run the settings' digest of the same image and tag.
	example, err := config.LoadSettings(filepath.Join("..", "examples", "rbd-dr-settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(example.Images.Hook, c.Image+"@sha256:") {
		t.Errorf("image = %q, want the one the example settings pin for the hooks (%s), so both move together", c.Image, example.Images.Hook)
	}
	if want := []corev1.EnvVar{{Name: config.SettingsEnv, Value: settingsDir + "/settings.yaml"}}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env = %+v, want %+v", c.Env, want)
	}
	if v := volume(pod.Volumes, settingsConfigMap); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != settingsConfigMap ||
		v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional {
		t.Errorf("volume %s is not the optional ConfigMap %s (a missing one must not stop the repo-server)", settingsConfigMap, settingsConfigMap)
	}
	if want := []string{"/var/run/argocd/argocd-cmp-server"}; !slices.Equal(c.Command, want) || len(c.Args) != 0 {
		t.Errorf("command = %v %v, want %v", c.Command, c.Args, want)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 999 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || sc.Privileged != nil {
		t.Errorf("securityContext = %+v, want user 999, non-root, no escalation, read-only root, drop ALL, RuntimeDefault", sc)
	}
	// The paths the cmp-server uses, as Argo CD's own constants name them.
	want := []corev1.VolumeMount{
		{Name: "var-files", MountPath: "/var/run/argocd"},
		{Name: "plugins", MountPath: argocommon.DefaultPluginSockFilePath},
		{Name: configMapName, MountPath: filepath.Join(argocommon.DefaultPluginConfigFilePath, argocommon.PluginConfigFileName), SubPath: argocommon.PluginConfigFileName},
		{Name: "cmp-tmp-rbd-dr", MountPath: "/tmp"},
		{Name: settingsConfigMap, MountPath: settingsDir, ReadOnly: true},
	}
	if !reflect.DeepEqual(c.VolumeMounts, want) {
		t.Errorf("volumeMounts = %+v, want %+v", c.VolumeMounts, want)
	}
	// var-files and plugins are shared with Argo CD's containers; /tmp is not.
	if v := volume(pod.Volumes, "var-files"); v == nil || v.EmptyDir == nil || !mountedBy(pod.InitContainers, "var-files", "/var/run/argocd") {
		t.Error("var-files is not the emptyDir the copyutil initContainer fills")
	}
	repoServer := container(pod.Containers, "argocd-repo-server")
	if v := volume(pod.Volumes, "plugins"); v == nil || v.EmptyDir == nil || repoServer == nil ||
		!mountedBy([]corev1.Container{*repoServer}, "plugins", argocommon.DefaultPluginSockFilePath) {
		t.Error("plugins is not the emptyDir the repo-server looks for sockets in")
	}
	if v := volume(pod.Volumes, "cmp-tmp-rbd-dr"); v == nil || v.EmptyDir == nil {
		t.Error("cmp-tmp-rbd-dr is not an emptyDir")
	}
	for _, other := range pod.Containers {
		if other.Name != sidecarName && mountedBy([]corev1.Container{other}, "cmp-tmp-rbd-dr", "") {
			t.Errorf("container %q shares the sidecar's /tmp", other.Name)
		}
	}
	v := volume(pod.Volumes, configMapName)
	if v == nil || v.ConfigMap == nil {
		t.Fatalf("volume %s is not a ConfigMap volume", configMapName)
	}
	if v.ConfigMap.Name != cmName {
		t.Errorf("volume %s refers to ConfigMap %q, want the generated %q", configMapName, v.ConfigMap.Name, cmName)
	}
}

// checkHealthLua reads the script: Argo CD's guide's check, in which the
// child's own status.health.status becomes the status.
func checkHealthLua(t *testing.T, lua string) {
	t.Helper()
	for _, want := range []string{`hs.status = "Progressing"`, "hs.status = obj.status.health.status", "hs.message = obj.status.health.message", "return hs"} {
		if !strings.Contains(lua, want) {
			t.Errorf("argocd-cm %s lacks %q:\n%s", healthKey, want, lua)
		}
	}
}

// Argo CD's own settings reader finds the script under argoproj.io/Application,
// and gitops-engine has no health check of its own for that kind (which is why
// the script is needed).
func checkArgoCDReadsHealthCheck(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: argocommon.ArgoCDSecretName, Namespace: namespace,
		Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"},
	}}
	log.SetLevel(log.WarnLevel) // the settings manager's informer chatter, also after it stops
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr := settings.NewSettingsManager(ctx, fake.NewSimpleClientset(cm.DeepCopy(), secret), namespace)
	overrides, err := mgr.GetResourceOverrides()
	if err != nil {
		t.Fatalf("Argo CD cannot read argocd-cm's resource customizations: %v", err)
	}
	if got := overrides["argoproj.io/Application"].HealthLua; got != cm.Data[healthKey] {
		t.Errorf("Argo CD's health script for argoproj.io/Application = %q, want ours", got)
	}
	gvk := schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Application"}
	if health.GetHealthCheckFunc(gvk) != nil {
		t.Error("gitops-engine now has an Application health check of its own; the argocd-cm patch may be redundant")
	}
	app := &unstructured.Unstructured{}
	app.SetGroupVersionKind(gvk)
	if hs, err := health.GetResourceHealth(app, nil); err != nil || hs != nil {
		t.Errorf("without the script an Application's health = %v, %v; want none (counted as healthy)", hs, err)
	}
}

// settings/ is the ConfigMap the sidecar mounts, carrying the example
// settings byte for byte, which the settings loader accepts.
func TestSettingsConfigMap(t *testing.T) {
	want := readFile(t, filepath.Join("..", "examples", "rbd-dr-settings.yaml"))
	copyPath := filepath.Join("settings", "settings.yaml")
	testutil.Golden(t, copyPath, want)
	m := build(t, "settings")
	if m.Size() != 1 {
		t.Fatalf("settings: %d objects, want the ConfigMap", m.Size())
	}
	y, err := m.Resources()[0].AsYAML()
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	decodeStrict(t, string(y), &cm)
	if cm.Name != settingsConfigMap || cm.Data["settings.yaml"] != string(want) {
		t.Errorf("ConfigMap %q with keys %v, want %s holding settings.yaml", cm.Name, slices.Collect(maps.Keys(cm.Data)), settingsConfigMap)
	}
	if _, err := config.ParseSettings([]byte(cm.Data["settings.yaml"]), "settings.yaml"); err != nil {
		t.Error(err)
	}
}

// tenantFolder is tenant/ built, with the example settings' entry for its
// namespace: the AppProject, the CephClients' caps by name and the
// CephBlockPoolRadosNamespaces.
func tenantFolder(t *testing.T) (*config.Settings, config.TenantSetting, v1alpha1.AppProject, map[string]map[string]string, []unstructured.Unstructured) {
	t.Helper()
	settings, err := config.LoadSettings(filepath.Join("..", "examples", "rbd-dr-settings.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := settings.Tenant("wordpress")
	if err != nil {
		t.Fatal(err)
	}
	var project v1alpha1.AppProject
	var radosNamespaces []unstructured.Unstructured
	clients := map[string]map[string]string{}
	for _, r := range build(t, "tenant").Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch r.GetKind() {
		case "AppProject":
			decodeStrict(t, string(y), &project)
		case "CephClient":
			var client unstructured.Unstructured
			if err := yaml.Unmarshal(y, &client.Object); err != nil {
				t.Fatal(err)
			}
			clients[client.GetName()], _, _ = unstructured.NestedStringMap(client.Object, "spec", "caps")
		case "CephBlockPoolRadosNamespace":
			var ns unstructured.Unstructured
			if err := yaml.Unmarshal(y, &ns.Object); err != nil {
				t.Fatal(err)
			}
			radosNamespaces = append(radosNamespaces, ns)
		default:
			t.Errorf("unexpected %s", r.GetKind())
		}
	}
	return settings, tenant, project, clients, radosNamespaces
}

// tenant/ makes the team's RADOS namespace in each of its pools, as the
// settings name it, mirrored per image with a snapshot schedule at the rpo
// the settings promise: the team's keys are confined to it.
func TestTenantRadosNamespace(t *testing.T) {
	_, tenant, _, _, got := tenantFolder(t)
	if tenant.RadosNamespace == "" {
		t.Fatal("the example settings give namespace wordpress no radosNamespace; the example is meant to confine the team")
	}
	var pools []string
	for _, ns := range got {
		pool, _, _ := unstructured.NestedString(ns.Object, "spec", "blockPoolName")
		pools = append(pools, pool)
		if ns.GetName() != tenant.RadosNamespace {
			t.Errorf("CephBlockPoolRadosNamespace %s, want the settings' radosNamespace %s", ns.GetName(), tenant.RadosNamespace)
		}
		if mode, _, _ := unstructured.NestedString(ns.Object, "spec", "mirroring", "mode"); mode != "image" {
			t.Errorf("CephBlockPoolRadosNamespace %s: mirroring mode %q, want image (the plugin enables each image)", ns.GetName(), mode)
		}
		schedules, _, _ := unstructured.NestedSlice(ns.Object, "spec", "mirroring", "snapshotSchedules")
		var intervals []string
		for _, s := range schedules {
			if m, ok := s.(map[string]any); ok {
				intervals = append(intervals, fmt.Sprint(m["interval"]))
			}
		}
		if want := []string{tenant.RPO}; !reflect.DeepEqual(intervals, want) {
			t.Errorf("CephBlockPoolRadosNamespace %s: snapshot schedules %v, want the settings' rpo %v", ns.GetName(), intervals, want)
		}
	}
	if !reflect.DeepEqual(pools, tenant.Pools) {
		t.Errorf("RADOS namespaces in pools %v, want one in each of the settings' pools %v", pools, tenant.Pools)
	}
}

// tenant/ is what the platform adds per team: a CephClient with the smallest
// caps the hook steps need on the team's pool, and an AppProject that lets
// the team's Applications deploy exactly what the plugin renders for its app,
// to its namespace on its sites, and no other cluster-scoped kind than PVs.
func TestTenant(t *testing.T) {
	settings, tenant, project, clients, _ := tenantFolder(t)
	want := map[string]map[string]string{tenant.CephUser: tenant.UserCaps()}
	if r := tenant.PeerReader; r != nil {
		want[r.User] = tenant.ReaderCaps()
	}
	if f := tenant.ForceUser; f != nil {
		want[f.User] = tenant.ForceCaps()
	}
	if !reflect.DeepEqual(clients, want) {
		t.Errorf("CephClients %v, want the settings' users with the caps the settings give them %v", clients, want)
	}

	if project.Name != tenant.Project {
		t.Errorf("AppProject %q, want the settings' %q", project.Name, tenant.Project)
	}
	var wantDest []v1alpha1.ApplicationDestination
	for _, s := range settings.Sites {
		wantDest = append(wantDest, v1alpha1.ApplicationDestination{Server: s.Cluster, Namespace: tenant.Namespace})
	}
	if !reflect.DeepEqual(project.Spec.Destinations, wantDest) {
		t.Errorf("destinations %+v, want the settings' sites in %s only: %+v", project.Spec.Destinations, tenant.Namespace, wantDest)
	}
	if want := []metav1.GroupKind{{Group: "", Kind: "PersistentVolume"}}; !reflect.DeepEqual(project.Spec.ClusterResourceWhitelist, want) {
		t.Errorf("clusterResourceWhitelist %v, want PersistentVolume only", project.Spec.ClusterResourceWhitelist)
	}
	// Every object the plugin renders for the example, on every site in both
	// roles, is one the project permits, and the project permits nothing more.
	used := map[metav1.GroupKind]bool{}
	root, _ := filepath.Abs("..")
	app := filepath.Join(root, "examples", "wordpress")
	p, err := config.Load(app, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, site := range p.Sites {
		for _, role := range []render.Role{render.Active, render.Passive} {
			res, err := render.Render(p, render.Options{RepoRoot: root, AppDir: app, Site: site.Name, Role: role, Settings: settings})
			if err != nil {
				t.Fatal(err)
			}
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range strings.Split(string(out), "\n---\n") {
				var u unstructured.Unstructured
				if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
					t.Fatal(err)
				}
				gk := u.GroupVersionKind().GroupKind()
				used[metav1.GroupKind{Group: gk.Group, Kind: gk.Kind}] = true
				whitelist := project.Spec.NamespaceResourceWhitelist
				if u.GetNamespace() == "" {
					whitelist = project.Spec.ClusterResourceWhitelist
				} else if u.GetNamespace() != tenant.Namespace {
					t.Errorf("%s %s in namespace %s, want %s", gk.Kind, u.GetName(), u.GetNamespace(), tenant.Namespace)
				}
				if !slices.Contains(whitelist, metav1.GroupKind{Group: gk.Group, Kind: gk.Kind}) {
					t.Errorf("%s on %s as %s: %s %s is not permitted by the AppProject", p.Name, site.Name, role, gk, u.GetName())
				}
			}
		}
	}
	for _, gk := range append(project.Spec.NamespaceResourceWhitelist, project.Spec.ClusterResourceWhitelist...) {
		if !used[gk] {
			t.Errorf("the AppProject permits %v, which nothing rendered uses", gk)
		}
	}
}

// The peer reader, whose key lies in the team's namespace on the OTHER site,
// can read that site's images of the team's pools (of its RADOS namespace in
// them) and change nothing: osd 'profile rbd-read-only' per pool and nothing
// else writable, so a leaked
// key cannot demote, promote, resync or write an image there.
func TestPeerReaderIsReadOnly(t *testing.T) {
	_, tenant, _, clients, _ := tenantFolder(t)
	if tenant.PeerReader == nil {
		t.Fatal("the example settings give namespace wordpress no peerReader")
	}
	caps, ok := clients[tenant.PeerReader.User]
	if !ok {
		t.Fatalf("tenant/ has no CephClient %s, the settings' peerReader.user", tenant.PeerReader.User)
	}
	osd := make([]string, len(tenant.Pools))
	for i, pool := range tenant.Pools {
		osd[i] = "profile rbd-read-only " + rbd.Image{Pool: pool, Namespace: tenant.RadosNamespace}.CapScope()
	}
	if want := map[string]string{"mon": "allow r", "osd": strings.Join(osd, ", ")}; !reflect.DeepEqual(caps, want) {
		t.Errorf("CephClient %s caps %v, want exactly %v: read-only, on the team's pools", tenant.PeerReader.User, caps, want)
	}
}

// argoCDTree lays out, in a temp dir, Argo CD's install.yaml from the module
// cache as a base, that base alone in namespace argocd, and that base with
// this folder (by relative path, so the real files are read) as a component.
func argoCDTree(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v2")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m github.com/argoproj/argo-cd/v2: %v\n%s", err, stderr(err))
	}
	argoDir := strings.TrimSpace(string(out))
	if argoDir == "" {
		t.Fatal("github.com/argoproj/argo-cd/v2 is not in the module cache; run: go mod download github.com/argoproj/argo-cd/v2")
	}
	install := readFile(t, filepath.Join(argoDir, "manifests", "install.yaml"))

	tree, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(tree, "with-rbd-dr")
	component, err := filepath.Rel(site, here)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"argocd/install.yaml":       string(install),
		"argocd/kustomization.yaml": "resources:\n- install.yaml\n",
		"argocd-only/kustomization.yaml": "namespace: " + namespace + "\n" +
			"resources:\n- ../argocd\n",
		"with-rbd-dr/kustomization.yaml": "namespace: " + namespace + "\n" +
			"resources:\n- ../argocd\n" +
			"components:\n- " + filepath.ToSlash(component) + "\n",
	}
	for name, content := range files {
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// build runs kustomize in-process with its defaults (the root-only load
// restrictor, as `kustomize build` and `kubectl apply -k` use).
func build(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return m
}

func asYAML(t *testing.T, m resmap.ResMap) []byte {
	t.Helper()
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// byID maps Kind.group/name.namespace to each object's YAML.
func byID(t *testing.T, m resmap.ResMap) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetGvk()
		id := gvk.Kind
		if gvk.Group != "" {
			id += "." + gvk.Group
		}
		id += "/" + r.GetName() + "." + r.GetNamespace()
		if _, dup := out[id]; dup {
			t.Fatalf("two objects %s", id)
		}
		out[id] = string(y)
	}
	return out
}

func decodeStrict(t *testing.T, y string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(y), into); err != nil {
		t.Fatalf("strict decode into %T: %v\n%s", into, err, y)
	}
}

func container(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func volume(vs []corev1.Volume, name string) *corev1.Volume {
	for i := range vs {
		if vs[i].Name == name {
			return &vs[i]
		}
	}
	return nil
}

// mountedBy: some container mounts the volume (at path, when path is set).
func mountedBy(cs []corev1.Container, name, path string) bool {
	for _, c := range cs {
		for _, m := range c.VolumeMounts {
			if m.Name == name && (path == "" || m.MountPath == path) {
				return true
			}
		}
	}
	return false
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// The CronJob health check (v2.14 has none): Argo CD's own settings reader
// finds it under batch/CronJob, and Argo CD's own Lua VM runs it: Degraded
// exactly while the last run failed and none is going on, so a failing
// rpo-check turns the app Degraded and a passing one turns it back.
func checkCronJobHealth(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	script := cm.Data[cronJobHealthKey]
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: argocommon.ArgoCDSecretName, Namespace: namespace,
		Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	overrides, err := settings.NewSettingsManager(ctx, fake.NewSimpleClientset(cm.DeepCopy(), secret), namespace).GetResourceOverrides()
	if err != nil || script == "" || overrides["batch/CronJob"].HealthLua != script {
		t.Fatalf("Argo CD's health script for batch/CronJob = %q (%v), want ours", overrides["batch/CronJob"].HealthLua, err)
	}
	if health.GetHealthCheckFunc(schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}) != nil {
		t.Error("gitops-engine now has a CronJob health check of its own; the argocd-cm patch may be redundant")
	}
	cases := []struct {
		name, status string
		suspend      bool
		want         health.HealthStatusCode
	}{
		{"never run", `{}`, false, health.HealthStatusHealthy},
		{"last run succeeded", `{"lastScheduleTime":"2026-12-05T10:01:00Z","lastSuccessfulTime":"2026-12-05T10:01:04Z"}`, false, health.HealthStatusHealthy},
		{"last run failed", `{"lastScheduleTime":"2026-12-05T10:02:00Z","lastSuccessfulTime":"2026-12-05T10:01:04Z"}`, false, health.HealthStatusDegraded},
		{"never succeeded", `{"lastScheduleTime":"2026-12-05T10:02:00Z"}`, false, health.HealthStatusDegraded},
		{"a run going on", `{"lastScheduleTime":"2026-12-05T10:02:00Z","lastSuccessfulTime":"2026-12-05T10:01:04Z","active":[{"name":"x"}]}`, false, health.HealthStatusHealthy},
		{"suspended", `{"lastScheduleTime":"2026-12-05T10:02:00Z"}`, true, health.HealthStatusHealthy},
	}
	for _, c := range cases {
		obj := &unstructured.Unstructured{}
		doc := fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"suspend":%t,"schedule":"* * * * *"},"status":%s}`, c.suspend, c.status)
		if err := obj.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		hs, err := argolua.VM{}.ExecuteHealthLua(obj, script)
		if err != nil || hs.Status != c.want {
			t.Errorf("CronJob health, %s: %+v %v; want %s", c.name, hs, err, c.want)
		}
	}
}
