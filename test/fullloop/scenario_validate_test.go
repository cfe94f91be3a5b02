package fullloop

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ensureNamespaces creates the namespaces (if missing) that objects live in.
func ensureNamespaces(ctx context.Context, c kubernetes.Interface, names []string) error {
	for _, ns := range names {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// validate sends every object the plugin renders, for every site in both
// roles, to that site's API server as a server-side apply dry run with
// strict field validation; and the app-of-apps to the hub, where Argo CD's
// CRDs are installed. One rejection fails the suite.
func (l *loop) validate(ctx context.Context, t *testing.T) {
	for _, a := range l.rendered() {
		l.validateApp(ctx, t, a)
	}
}

func (l *loop) validateApp(ctx context.Context, t *testing.T, a *app) {
	n := 0
	for _, site := range a.sites() {
		c := l.sites[site]
		ap, err := newApplier(c.admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{"active", "passive"} {
			objs := a.render(t, site, role)
			if err := ensureNamespaces(ctx, c.client, namespaces(objs)); err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if err := ap.apply(ctx, o, true); err != nil {
					t.Errorf("site %s (%s): the API server rejects %v", site, role, err)
				}
				n++
			}
		}
	}
	hub, err := newApplier(l.hub.admin)
	if err != nil {
		t.Fatal(err)
	}
	apps := a.render(t, "", "")
	for _, o := range apps {
		if o.GetNamespace() == "" {
			o.SetNamespace(argoNS) // where the parent Application applies them
		}
		if err := hub.apply(ctx, o, true); err != nil {
			t.Errorf("app-of-apps: the hub rejects %v", err)
		}
		n++
	}
	t.Logf("%s: %d objects accepted by the API servers (dry-run, fieldValidation=Strict)", a.name(), n)
}
