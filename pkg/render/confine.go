package render

import (
	"fmt"

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
		namespaced, known := openapi.IsNamespaceScoped(yaml.TypeMeta{APIVersion: res.GetApiVersion(), Kind: res.GetKind()})
		ns := res.GetNamespace()
		switch {
		case known && !namespaced:
			return fmt.Errorf("%s is cluster-scoped: an app may only hold objects in its namespace %s (the platform team creates cluster-wide objects); remove it from the overlay", what, namespace)
		case ns == "" && !known:
			return fmt.Errorf("%s (%s) has no namespace and its kind is not one kustomize knows to be namespaced; set namespace: %s in the kustomization", what, res.GetApiVersion(), namespace)
		case ns != "" && ns != namespace:
			return fmt.Errorf("%s is in namespace %s, but this app's namespace is %s (the Application's destination); an app may only hold objects in its own namespace", what, ns, namespace)
		}
	}
	return nil
}
