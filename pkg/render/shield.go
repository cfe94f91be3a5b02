package render

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/api/resmap"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

// shield refuses overlay objects that would take over what the hook Jobs
// rely on: a Secret by the name of a key Secret the Ceph Jobs mount (Argo
// CD would then write the team's own content over the platform's key),
// and a RoleBinding that gives a hook's ServiceAccount rights the plugin
// did not (quiesce's or demote's account would then run with them).
func shield(app resmap.ResMap, pl *placement) error {
	keys := []string{pl.tenant.CephSecret.Name}
	for _, c := range []*config.CephCredential{pl.tenant.PeerReader, pl.tenant.ForceUser} {
		if c != nil {
			keys = append(keys, c.Secret.Name)
		}
	}
	hookAccounts := []string{objectName(pl.policy.Name, string(hookcmd.Quiesce)), objectName(pl.policy.Name, string(hookcmd.Demote))}
	for _, res := range app.Resources() {
		kind, group := res.GetKind(), res.GetGvk().Group
		switch {
		case group == "" && kind == "Secret" && slices.Contains(keys, res.GetName()):
			return refuse(fmt.Errorf("Secret %s is the Secret the Ceph hook Jobs mount the namespace's Ceph key from (the platform's settings name it): an app's object must not replace it; remove it from the overlay, the platform team manages that Secret", res.GetName()), res)
		case group == "rbac.authorization.k8s.io" && kind == "RoleBinding":
			m, err := res.Map()
			if err != nil {
				return refuse(fmt.Errorf("RoleBinding %s: %w", res.GetName(), err), res)
			}
			subjects, _ := m["subjects"].([]any)
			for _, s := range subjects {
				sub, _ := s.(map[string]any)
				ns, _ := sub["namespace"].(string)
				name, _ := sub["name"].(string)
				if sub["kind"] == "ServiceAccount" && slices.Contains(hookAccounts, name) && (ns == "" || ns == pl.namespace) {
					return refuse(fmt.Errorf("RoleBinding %s binds ServiceAccount %s, a hook's own: the hook runs with exactly the rights the plugin gives it; remove the binding from the overlay", res.GetName(), name), res)
				}
			}
		}
	}
	return nil
}
