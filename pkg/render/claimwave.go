package render

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resmap"
	kresource "sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// helmWeightAnnotation is what Argo CD reads for a wave when an object has
// no sync-wave (gitops-engine's syncwaves.Wave).
const helmWeightAnnotation = "helm.sh/hook-weight"

// waveClaims orders the volumes before what needs them, in Argo CD's sync
// waves:
//
//   - a claim that Argo CD takes for a StatefulSet's own (a name its
//     volumeClaimTemplates would give, the rule gitops-engine infers owners
//     by) goes one wave before that StatefulSet. Argo CD refreshes an app's
//     health on a change of such a claim only as part of the StatefulSet,
//     without looking at the claim again, so a claim bound after the sync
//     ended left the app Progressing until the periodic reconcile (3 to 6
//     minutes after a first sync of 20 claims); a wave of its own makes the
//     sync wait for the claims to be bound;
//   - each static PV goes in its claim's wave, where the claim has one: a
//     PV a wave after its claim would never be applied, as Argo CD waits for
//     the claim to be bound first.
//
// A claim the overlay gives a wave keeps it. An app whose claims are all in
// sync costs nothing with ApplyOutOfSyncOnly (the Applications we render
// set it): Argo CD skips a wave with nothing to apply.
func waveClaims(app resmap.ResMap, volumes []Object) error {
	type owner struct {
		prefix string // <template>-<StatefulSet>-
		wave   int
	}
	var owners []owner
	claims := map[string]*kresource.Resource{}
	for _, res := range app.Resources() {
		gvk := res.GetGvk()
		if gvk.Group == "" && gvk.Kind == "PersistentVolumeClaim" {
			claims[res.GetName()] = res
		}
		if gvk.Group != "apps" || gvk.Kind != "StatefulSet" {
			continue
		}
		templates, err := res.Pipe(yaml.Lookup("spec", "volumeClaimTemplates"))
		if err != nil {
			return refuse(fmt.Errorf("StatefulSet %s: reading spec.volumeClaimTemplates: %w", res.GetName(), err), res)
		}
		if templates == nil {
			continue
		}
		elems, err := templates.Elements()
		if err != nil {
			return refuse(fmt.Errorf("StatefulSet %s: spec.volumeClaimTemplates is not a list: %w", res.GetName(), err), res)
		}
		for _, t := range elems {
			name, err := t.Pipe(yaml.Lookup("metadata", "name"))
			if err != nil || name == nil {
				continue // the API server refuses a template without a name
			}
			owners = append(owners, owner{yaml.GetValue(name) + "-" + res.GetName() + "-", wave(res.GetAnnotations())})
		}
	}
	// claimWave is the wave of the claim named so, and whether it has one.
	claimWave := func(name string, own map[string]string) (int, bool) {
		_, set := own[WaveAnnotation]
		if _, weighted := own[helmWeightAnnotation]; set || weighted {
			return wave(own), true
		}
		w, found := 0, false
		for _, o := range owners {
			if ownedBy(name, o.prefix) && (!found || o.wave-1 < w) {
				w, found = o.wave-1, true
			}
		}
		return w, found
	}
	// Only the claims bound to the app's static PVs: those bind at once.
	// Another claim (dynamically provisioned, perhaps WaitForFirstConsumer)
	// may bind only once the StatefulSet's pod exists, which a wave before
	// it would never let happen.
	bound := map[string]bool{}
	for _, obj := range volumes {
		if obj["kind"] == "PersistentVolume" {
			name, _, _ := unstructured.NestedString(obj, "spec", "claimRef", "name")
			bound[name] = true
		}
	}
	for name, res := range claims {
		if !bound[name] {
			continue
		}
		own := res.GetAnnotations()
		if _, set := own[WaveAnnotation]; set {
			continue
		}
		if w, ok := claimWave(name, own); ok {
			own[WaveAnnotation] = strconv.Itoa(w)
			if err := res.SetAnnotations(own); err != nil {
				return fmt.Errorf("PersistentVolumeClaim %s: setting its sync wave: %w", name, err)
			}
		}
	}
	for _, obj := range volumes {
		var name string
		var own map[string]string
		switch obj["kind"] {
		case "PersistentVolumeClaim": // added by bindVolumes
			name, _, _ = unstructured.NestedString(obj, "metadata", "name")
		case "PersistentVolume":
			name, _, _ = unstructured.NestedString(obj, "spec", "claimRef", "name")
			if res, ok := claims[name]; ok {
				own = res.GetAnnotations() // already given its wave above
			}
		default:
			continue
		}
		w, ok := claimWave(name, own)
		if !ok {
			continue
		}
		if err := unstructured.SetNestedField(obj, strconv.Itoa(w), "metadata", "annotations", WaveAnnotation); err != nil {
			return fmt.Errorf("%s for claim %s: setting its sync wave: %w", obj["kind"], name, err)
		}
	}
	return nil
}

// wave is an object's sync wave as Argo CD reads it: its sync-wave, else
// its Helm hook weight, else 0 (a value that is no integer counts as none).
func wave(annotations map[string]string) int {
	for _, key := range []string{WaveAnnotation, helmWeightAnnotation} {
		if v, ok := annotations[key]; ok {
			if w, err := strconv.Atoi(v); err == nil {
				return w
			}
		}
	}
	return 0
}

// ownedBy says whether Argo CD takes the claim for one a StatefulSet's
// template made: prefix (<template>-<StatefulSet>-) then digits, at the end
// of the name (gitops-engine's `%s-%s-\d+$`, whose dots match any
// character; names hold no other pattern character).
func ownedBy(claim, prefix string) bool {
	digits := strings.TrimRightFunc(claim, func(r rune) bool { return r >= '0' && r <= '9' })
	return len(digits) < len(claim) && strings.HasSuffix(digits, prefix)
}
