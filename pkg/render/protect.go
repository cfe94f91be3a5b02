package render

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/api/resmap"
	kresource "sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// workload is an object of the overlay that runs pods, and the claims its
// pods mount.
type workload struct {
	kind, name string
	claims     []string
}

func (w workload) String() string { return w.kind + " " + w.name }

// stoppable says whether quiesce and the passive transform can stop the
// workload's pods: Deployments and StatefulSets are scaled to 0, CronJobs
// suspended. A DaemonSet, a bare Pod, a Job or a ReplicaSet would keep
// writing to a volume that is being demoted.
func (w workload) stoppable() bool {
	return w.kind == "Deployment" || w.kind == "StatefulSet" || w.kind == "CronJob"
}

// podSpecPath is where each kind that runs pods keeps its pod spec.
var podSpecPath = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// workloads reads, from the built overlay, every object that runs pods and
// the PersistentVolumeClaims they mount: pod volumes by claimName, and a
// StatefulSet's volumeClaimTemplates as the claims of each replica
// (<template>-<statefulset>-<ordinal>).
func workloads(app resmap.ResMap) ([]workload, error) {
	var out []workload
	for _, res := range app.Resources() {
		path, ok := podSpecPath[res.GetKind()]
		if !ok || !isCoreOrApps(res) {
			continue
		}
		w := workload{kind: res.GetKind(), name: res.GetName()}
		vols, err := res.Pipe(yaml.Lookup(append(path, "volumes")...))
		if err != nil {
			return nil, fmt.Errorf("%s: reading its volumes: %w", w, err)
		}
		if vols != nil {
			for _, v := range vols.Content() {
				if claim := valueAt(v, "persistentVolumeClaim", "claimName"); claim != "" {
					w.claims = append(w.claims, claim)
				}
			}
		}
		if w.kind == "StatefulSet" {
			claims, err := templateClaims(res)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w, err)
			}
			w.claims = append(w.claims, claims...)
		}
		out = append(out, w)
	}
	return out, nil
}

// isCoreOrApps keeps the kinds of podSpecPath to their own API groups, so
// that a custom resource of the same kind name is not misread.
func isCoreOrApps(res *kresource.Resource) bool {
	switch res.GetGvk().Group {
	case "", "apps", "batch":
		return true
	}
	return false
}

// valueAt is the scalar at path below node, or "".
func valueAt(node *yaml.Node, path ...string) string {
	rn, err := yaml.NewRNode(node).Pipe(yaml.Lookup(path...))
	if err != nil || rn == nil {
		return ""
	}
	return yaml.GetValue(rn)
}

func templateClaims(res *kresource.Resource) ([]string, error) {
	tmpls, err := res.Pipe(yaml.Lookup("spec", "volumeClaimTemplates"))
	if err != nil || tmpls == nil {
		return nil, err
	}
	replicas := 1
	if r := stringAt(res, "spec", "replicas"); r != "" {
		n, err := strconv.Atoi(r)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("spec.replicas %q is not a count", r)
		}
		replicas = n
	}
	var claims []string
	for _, t := range tmpls.Content() {
		name := valueAt(t, "metadata", "name")
		for i := range replicas {
			claims = append(claims, fmt.Sprintf("%s-%s-%d", name, res.GetName(), i))
		}
	}
	return claims, nil
}

// protect checks, over the rendered overlay rather than the text of the
// files, that a failover moves all of the app's data and can stop every
// writer first: each declared volume is a claim the workloads mount, each
// mounted claim is declared (or declared unprotected on purpose), and only
// workloads that quiesce can stop write to a protected claim.
func protect(p *config.Policy, app resmap.ResMap) error {
	ws, err := workloads(app)
	if err != nil {
		return err
	}
	mountedBy := map[string][]workload{}
	for _, w := range ws {
		for _, c := range w.claims {
			mountedBy[c] = append(mountedBy[c], w)
		}
	}
	protected := map[string]bool{}
	var problems []string
	for i, vol := range p.Volumes {
		protected[vol.PVC] = true
		if len(mountedBy[vol.PVC]) == 0 {
			problems = append(problems, p.Problem(fmt.Sprintf("volumes[%d].pvc", i), "no workload of the overlay mounts PersistentVolumeClaim %q, so a failover would move an image nothing uses while the app's real data stays behind; %s", vol.PVC, likelyCause(vol.PVC, mountedBy)).Error())
		}
	}
	unprotected := map[string]bool{}
	for _, u := range p.Unprotected {
		unprotected[u.PVC] = true
	}
	for _, claim := range slices.Sorted(maps.Keys(mountedBy)) {
		if !protected[claim] && !unprotected[claim] {
			problems = append(problems, fmt.Sprintf("%s mounts PersistentVolumeClaim %s, which is not under volumes in %s: its data would not be mirrored and would stay behind on a failover; declare its image under volumes, or list it under unprotected (with the reason) if losing it is fine", names(mountedBy[claim]), claim, p.File))
		}
		if !protected[claim] {
			continue
		}
		for _, w := range mountedBy[claim] {
			if !w.stoppable() {
				problems = append(problems, fmt.Sprintf("%s mounts the protected PersistentVolumeClaim %s, but argocd-rbd-dr can only stop Deployments, StatefulSets and CronJobs before it demotes: on the passive site this writer would keep the image in use and the demote would wait until it times out; run it as a Deployment or StatefulSet", w, claim))
			}
		}
	}
	problems = append(problems, autoscaled(app, ws, protected)...)
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// autoscaled refuses an autoscaler of a workload that writes to a protected
// claim: on the passive site the plugin holds that workload at 0 replicas,
// and an autoscaler that scales it back up starts a writer on a demoted image.
func autoscaled(app resmap.ResMap, ws []workload, protected map[string]bool) []string {
	writes := map[string]string{}
	for _, w := range ws {
		for _, c := range w.claims {
			if protected[c] {
				writes[w.String()] = c
			}
		}
	}
	var problems []string
	for _, res := range app.Resources() {
		if res.GetKind() != "HorizontalPodAutoscaler" || res.GetGvk().Group != "autoscaling" {
			continue
		}
		target := stringAt(res, "spec", "scaleTargetRef", "kind") + " " + stringAt(res, "spec", "scaleTargetRef", "name")
		if claim, ok := writes[target]; ok {
			problems = append(problems, fmt.Sprintf("HorizontalPodAutoscaler %s scales %s, which writes to the protected PersistentVolumeClaim %s: argocd-rbd-dr stops that writer on the passive site and an autoscaler must not start it there; remove the autoscaler (a writer of one RBD image cannot scale out anyway)", res.GetName(), target, claim))
		}
	}
	return problems
}

// likelyCause guesses why a declared claim is not mounted, from the claims
// that are: a name prefix or suffix added by the overlay, or a spelling.
func likelyCause(pvc string, mountedBy map[string][]workload) string {
	claims := slices.Sorted(maps.Keys(mountedBy))
	for _, c := range claims {
		if c != pvc && strings.Contains(c, pvc) {
			return fmt.Sprintf("%s mounts %q: the overlay renames the claim (namePrefix or nameSuffix); set volumes[].pvc to the rendered name %q", names(mountedBy[c]), c, c)
		}
	}
	for _, c := range claims {
		if distance(c, pvc) <= 2 {
			return fmt.Sprintf("%s mounts %q: is the name misspelt in %s or in the overlay?", names(mountedBy[c]), c, config.FileName)
		}
	}
	if len(claims) == 0 {
		return "the overlay's workloads mount no PersistentVolumeClaim at all"
	}
	return fmt.Sprintf("the workloads mount %s", strings.Join(claims, ", "))
}

func names(ws []workload) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, " and ")
}

// distance is the Levenshtein distance of two short names.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
