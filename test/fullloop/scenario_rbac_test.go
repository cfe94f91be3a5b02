package fullloop

import (
	"context"
	"fmt"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// can asks a site's API server whether user may do verb on resource.
func (l *loop) can(ctx context.Context, t *testing.T, site, user, verb, group, resource, sub, ns string) bool {
	t.Helper()
	r, err := l.sites[site].client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub, Namespace: ns}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}

// rbac: everything above ran with these identities, checked by the real
// API servers; here the suite shows none of them is more than it needs:
// Argo CD's controller on the sites is not cluster-admin, the quiesce step's
// ServiceAccount can patch workloads and list pods in the app's namespace
// and nothing beyond, demote's can only list those pods, and the other Ceph
// Jobs run without a ServiceAccount token.
//
// It runs right after a relocation. Seen on the full loop (2026-12-05):
// after a second full sync in quick succession (the steady state), the
// passive site's quiesce ServiceAccount, Role and RoleBinding were gone
// (BeforeHookCreation deletes them and Argo CD's cache may lag the
// deletion); the next sync makes them again before the quiesce Job.
func (l *loop) rbac(ctx context.Context, t *testing.T) {
	controller := "system:serviceaccount:" + argoNS + ":argocd-application-controller"
	for _, site := range l.app.sites() {
		for _, c := range []struct{ verb, group, resource, ns string }{
			{"create", "rbac.authorization.k8s.io", "clusterrolebindings", ""},
			{"create", "batch", "jobs", "kube-system"},
			{"delete", "", "nodes", ""},
			{"create", "", "pods", "kube-system"},
		} {
			if l.can(ctx, t, site, controller, c.verb, c.group, c.resource, "", c.ns) {
				t.Errorf("%s: Argo CD's controller may %s %s in %q: more than the app needs", site, c.verb, c.resource, c.ns)
			}
		}
		objs := l.app.render(t, site, "passive")
		for _, j := range jobs(t, objs) {
			spec := j.Spec.Template.Spec
			if spec.ServiceAccountName == "" {
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("%s: Job %s/%s runs with the default ServiceAccount's token", site, j.Namespace, j.Name)
				}
				continue
			}
			sa := "system:serviceaccount:" + j.Namespace + ":" + spec.ServiceAccountName
			type right struct{ verb, group, resource, ns string }
			// quiesce stops the app's workloads and watches their pods;
			// demote only looks for pods that still mount its claims
			ok := []right{{"list", "", "pods", j.Namespace}}
			no := []right{{"get", "", "secrets", j.Namespace}, {"delete", "", "pods", j.Namespace}, {"create", "batch", "jobs", j.Namespace},
				{"list", "", "pods", "kube-system"}, {"patch", "apps", "deployments", "kube-system"}}
			stops := []right{{"patch", "apps", "deployments", j.Namespace}, {"patch", "apps", "statefulsets", j.Namespace}, {"patch", "batch", "cronjobs", j.Namespace}}
			switch step := j.Labels[stepLabel]; step {
			case "quiesce":
				ok = append(ok, stops...)
			case "demote":
				no = append(no, stops...)
			default:
				t.Errorf("%s: Job %s/%s (step %q) runs as ServiceAccount %s: only quiesce and demote call the API", site, j.Namespace, j.Name, step, spec.ServiceAccountName)
			}
			for _, r := range ok {
				if !l.can(ctx, t, site, sa, r.verb, r.group, r.resource, "", r.ns) {
					t.Errorf("%s: %s may not %s %s in %s (%s)", site, sa, r.verb, r.resource, r.ns, l.hookRBAC(ctx, site, j.Namespace, spec.ServiceAccountName))
				}
			}
			for _, r := range no {
				if l.can(ctx, t, site, sa, r.verb, r.group, r.resource, "", r.ns) {
					t.Errorf("%s: %s may %s %s in %s: more than its step needs", site, sa, r.verb, r.resource, r.ns)
				}
			}
		}
		// What ran: no hook pod had a token it did not ask for.
		pods, err := l.sites[site].client.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: stepLabel})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Spec.ServiceAccountName == "" || p.Spec.ServiceAccountName == "default" {
				for _, v := range p.Spec.Volumes {
					if v.Projected != nil && hasToken(v.Projected) {
						t.Errorf("%s: hook pod %s/%s got a ServiceAccount token", site, p.Namespace, p.Name)
					}
				}
			}
		}
	}
}

func hasToken(p *corev1.ProjectedVolumeSource) bool {
	for _, s := range p.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// hookRBAC says which of the quiesce step's ServiceAccount, Role and
// RoleBinding (one name) exist on site, for a message.
func (l *loop) hookRBAC(ctx context.Context, site, namespace, name string) string {
	c := l.sites[site].client
	found := func(err error) string {
		if err != nil {
			return err.Error()
		}
		return "present"
	}
	_, sa := c.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
	_, role := c.RbacV1().Roles(namespace).Get(ctx, name, metav1.GetOptions{})
	_, rb := c.RbacV1().RoleBindings(namespace).Get(ctx, name, metav1.GetOptions{})
	return fmt.Sprintf("ServiceAccount: %s; Role: %s; RoleBinding: %s", found(sa), found(role), found(rb))
}
