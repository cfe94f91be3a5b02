package render

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// confine keeps a team's overlay inside the app's namespace: an object in
// another namespace, or a cluster-scoped one, could reach what belongs to
// other teams or the platform. The plugin's own static PVs are the only
// cluster-scoped objects in the output, and they are not the overlay's.
func confine(app resmap.ResMap, namespace string) error {
	for _, res := range app.Resources() {
		gvk := res.GetGvk()
		what := fmt.Sprintf("%s %s", gvk.Kind, res.GetName())
		namespaced, known := scopeOf(res.GetApiVersion(), res.GetKind())
		ns := res.GetNamespace()
		switch {
		case known && !namespaced:
			return refuse(fmt.Errorf("%s is cluster-scoped: an app may only hold objects in its namespace %s (the platform team creates cluster-wide objects); remove it from the overlay", what, namespace), res)
		case ns == "" && !known:
			return refuse(fmt.Errorf("%s (%s) has no namespace and its kind is not one kustomize knows to be namespaced; set namespace: %s in the kustomization", what, res.GetApiVersion(), namespace), res)
		case ns != "" && ns != namespace:
			return refuse(fmt.Errorf("%s is in namespace %s, but this app's namespace is %s (the Application's destination); an app may only hold objects in its own namespace", what, ns, namespace), res)
		}
	}
	return nil
}

// otherVersions are the versions tried when kustomize's built-in schema does
// not know a kind at the version given: a kind keeps its scope across the
// versions of its group (autoscaling/v2 is autoscaling/v1's).
var otherVersions = []string{"v1", "v2", "v1beta1", "v1beta2", "v2beta1", "v2beta2", "v1alpha1"}

// scopeOf says whether a kind is namespaced, and whether that is known.
func scopeOf(apiVersion, kind string) (namespaced, known bool) {
	if namespaced, known = openapi.IsNamespaceScoped(yaml.TypeMeta{APIVersion: apiVersion, Kind: kind}); known {
		return namespaced, known
	}
	group, _, hasGroup := strings.Cut(apiVersion, "/")
	for _, v := range otherVersions {
		other := v
		if hasGroup {
			other = group + "/" + v
		}
		if namespaced, known = openapi.IsNamespaceScoped(yaml.TypeMeta{APIVersion: other, Kind: kind}); known {
			return namespaced, known
		}
	}
	return false, false
}
