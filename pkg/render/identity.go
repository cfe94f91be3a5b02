package render

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation"
)

// identity is what Kubernetes tells objects apart by. Two objects of one
// identity in the output would be applied over each other.
type identity struct {
	group, kind, namespace, name string
}

func (id identity) String() string {
	what := id.kind
	if id.group != "" {
		what += "." + id.group
	}
	if id.namespace != "" {
		return fmt.Sprintf("%s %s/%s", what, id.namespace, id.name)
	}
	return fmt.Sprintf("%s %s", what, id.name)
}

// checkOutput checks every object of the site's output, the overlay's and
// the plugin's alike: each has a name Kubernetes accepts for its kind, and
// no two share an identity (an overlay object named like a hook Job or a
// static PV, say). A namespaced object without a namespace lands in the
// app's namespace, so it is counted there.
func checkOutput(r *Result, namespace string) error {
	var ids []identity
	for _, res := range r.App.Resources() {
		ids = append(ids, identityOf(res.GetApiVersion(), res.GetKind(), res.GetNamespace(), res.GetName(), namespace))
	}
	for _, obj := range r.ours() {
		meta, _ := obj["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		name, _ := meta["name"].(string)
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		ids = append(ids, identityOf(apiVersion, kind, ns, name, namespace))
	}
	seen := map[identity]bool{}
	for _, id := range ids {
		if seen[id] {
			return fmt.Errorf("two objects are %s: Argo CD would apply one over the other; rename the overlay's (argocd-rbd-dr names its own <name>-rbd-dr-<step> and rbd.<pool>.<image>)", id)
		}
		seen[id] = true
		if err := validName(id); err != nil {
			return err
		}
	}
	return nil
}

func identityOf(apiVersion, kind, ns, name, appNamespace string) identity {
	group, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		group = ""
	}
	if namespaced, known := scopeOf(apiVersion, kind); ns == "" && (namespaced || !known) {
		ns = appNamespace
	}
	return identity{group: group, kind: kind, namespace: ns, name: name}
}

// validName checks a name the way the API server will for its kind, so that
// a bad one fails here, with the file's context, not halfway through a sync.
func validName(id identity) error {
	var errs []string
	switch {
	case id.group == "" && id.kind == "Service":
		errs = validation.IsDNS1035Label(id.name)
	case id.group == "" && id.kind == "Namespace":
		errs = validation.IsDNS1123Label(id.name)
	case id.group == "rbac.authorization.k8s.io":
		errs = path.IsValidPathSegmentName(id.name)
	default:
		errs = validation.IsDNS1123Subdomain(id.name)
	}
	if id.name == "" {
		errs = []string{"it has no name"}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: the name is not valid for its kind: %s", id, errs[0])
	}
	if id.namespace != "" {
		if errs := validation.IsDNS1123Label(id.namespace); len(errs) > 0 {
			return fmt.Errorf("%s: the namespace is not a namespace name: %s", id, errs[0])
		}
	}
	return nil
}
