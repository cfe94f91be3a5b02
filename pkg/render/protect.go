package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	model "github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// workload is one object of the overlay that runs pods, with the claims
// its pods mount (pkg/workload says which kinds, and how each is stopped).
type workload struct {
	kind   model.Kind
	name   string
	claims []string
	res    *resource.Resource
}

func (w workload) String() string { return w.kind.Name + " " + w.name }

// stoppable says whether quiesce and the passive transform stop the
// workload's pods before a demote (model.Kind.CanStop).
func (w workload) stoppable() bool { return w.kind.CanStop() }

// workloads reads, from the built overlay, every object that runs pods and
// the PersistentVolumeClaims they mount.
// An object of a kind the catalog does not know counts when it names a
// claim anywhere: it may run pods that write to it.
func workloads(app resmap.ResMap, kinds model.Catalog) ([]workload, error) {
	var out []workload
	for _, res := range app.Resources() {
		gvk := res.GetGvk()
		k, known := kinds.Lookup(gvk.Group, gvk.Kind)
		if !known {
			if gvk.Group == "" && gvk.Kind == "PersistentVolumeClaim" {
				continue
			}
			k = model.Unknown(gvk.Group, gvk.Kind)
		}
		w := workload{kind: k, name: res.GetName(), res: res}
		obj, err := res.Map()
		if err != nil {
			return nil, refuse(fmt.Errorf("%s: %w", w, err), res)
		}
		if w.claims, err = k.Claims(obj); err != nil {
			return nil, refuse(fmt.Errorf("%s: %w", w, err), res)
		}
		if known || len(w.claims) > 0 {
			out = append(out, w)
		}
	}
	return out, nil
}

// protect checks, over the rendered overlay rather than the text of the
// files, that a failover moves all of the app's data and can stop every
// writer first: each declared volume is a claim the workloads mount, each
// mounted claim is declared (or declared unprotected on purpose), and only
// workloads that quiesce can stop write to a protected claim.
func protect(p *config.Policy, kinds model.Catalog, app resmap.ResMap) error {
	ws, err := workloads(app, kinds)
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
	var found problems
	for i, vol := range p.Volumes {
		protected[vol.PVC] = true
		if len(mountedBy[vol.PVC]) == 0 {
			found = append(found, p.Problem(fmt.Sprintf("volumes[%d].pvc", i), "no workload of the overlay mounts PersistentVolumeClaim %q, so a failover would move an image nothing uses while the app's real data stays behind; %s", vol.PVC, likelyCause(vol.PVC, mountedBy)))
		}
	}
	unprotected := map[string]bool{}
	for _, u := range p.Unprotected {
		unprotected[u.PVC] = true
	}
	for _, claim := range slices.Sorted(maps.Keys(mountedBy)) {
		if !protected[claim] && !unprotected[claim] {
			found = append(found, refuse(fmt.Errorf("%s mounts PersistentVolumeClaim %s, which is not under volumes in %s: its data would not be mirrored and would stay behind on a failover; declare its image under volumes, or list it under unprotected (with the reason) if losing it is fine", names(mountedBy[claim]), claim, p.File), resources(mountedBy[claim])...))
		}
		if !protected[claim] {
			continue
		}
		for _, w := range mountedBy[claim] {
			switch {
			case w.kind.IsUnknown():
				found = append(found, refuse(fmt.Errorf("%s (API group %q) mounts the protected PersistentVolumeClaim %s, but argocd-rbd-dr does not know how to stop a %s before it demotes: on the passive site it would keep writing to a demoted image; ask the platform team to teach the kind under workloadKinds in the settings (where its pod spec is, and the field that stops it), or run the writer as a %s", w, w.kind.Group, claim, w.kind.Name, stoppableNames(kinds)), w.res))
			case !w.stoppable():
				found = append(found, refuse(fmt.Errorf("%s mounts the protected PersistentVolumeClaim %s, but argocd-rbd-dr can only stop a %s before it demotes: on the passive site this writer would keep the image in use and the demote would wait until it times out; run it as one of those", w, claim, stoppableNames(kinds)), w.res))
			}
		}
	}
	found = append(found, autoscaled(app, ws, protected)...)
	return found.orNil()
}

func resources(ws []workload) []*resource.Resource {
	out := make([]*resource.Resource, len(ws))
	for i, w := range ws {
		out[i] = w.res
	}
	return out
}

// autoscaled refuses an autoscaler of a workload that writes to a protected
// claim: on the passive site the plugin holds that workload at 0 replicas,
// and an autoscaler that scales it back up starts a writer on a demoted image.
func autoscaled(app resmap.ResMap, ws []workload, protected map[string]bool) problems {
	writes := map[string]string{}
	for _, w := range ws {
		for _, c := range w.claims {
			if protected[c] {
				writes[w.String()] = c
			}
		}
	}
	var found problems
	for _, res := range app.Resources() {
		if res.GetKind() != "HorizontalPodAutoscaler" || res.GetGvk().Group != "autoscaling" {
			continue
		}
		target := stringAt(res, "spec", "scaleTargetRef", "kind") + " " + stringAt(res, "spec", "scaleTargetRef", "name")
		if claim, ok := writes[target]; ok {
			found = append(found, refuse(fmt.Errorf("HorizontalPodAutoscaler %s scales %s, which writes to the protected PersistentVolumeClaim %s: argocd-rbd-dr stops that writer on the passive site and an autoscaler must not start it there; remove the autoscaler (a writer of one RBD image cannot scale out anyway)", res.GetName(), target, claim), res))
		}
	}
	return found
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

// stoppableNames lists the kinds argocd-rbd-dr stops, for messages:
// "Deployment, StatefulSet, CronJob or Rollout".
func stoppableNames(kinds model.Catalog) string {
	var ns []string
	for _, k := range kinds.Stoppable() {
		ns = append(ns, k.Name)
	}
	if len(ns) < 2 {
		return strings.Join(ns, "")
	}
	return strings.Join(ns[:len(ns)-1], ", ") + " or " + ns[len(ns)-1]
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
