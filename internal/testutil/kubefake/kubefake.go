// Package kubefake is the fake Kubernetes API that tests of the quiesce step
// run it against: client-go's fake dynamic client, with the one controller
// behaviour quiesce waits for. It is a package of its own so that only the
// tests that use it link client-go's fakes.
package kubefake

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Cluster is a fake API holding objs (core/v1, apps/v1 and batch/v1 objects,
// and unstructured Rollouts and example.com/v1 Databases) that records
// every request in its Actions. A patch that scales a Deployment,
// StatefulSet, Rollout or Database to 0 removes its pod, named NAME-0 in the tests, as its
// controller would; without that a quiesce could never see its volumes
// unused.
func Cluster(t testing.TB, objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	// Argo Rollouts' kind, and a custom kind the settings teach in the
	// tests, are not in the scheme: their lists are named here.
	lists := map[schema.GroupVersionResource]string{
		{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}: "RolloutList",
		{Group: "example.com", Version: "v1", Resource: "databases"}:      "DatabaseList",
	}
	kube := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, lists, objs...)
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	for _, resource := range []string{"deployments", "statefulsets", "rollouts", "databases"} {
		kube.PrependReactor("patch", resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
			patch := a.(k8stesting.PatchAction)
			var scale struct {
				Spec struct{ Replicas *int64 }
			}
			if json.Unmarshal(patch.GetPatch(), &scale) != nil || scale.Spec.Replicas == nil || *scale.Spec.Replicas != 0 {
				return false, nil, nil
			}
			if err := kube.Tracker().Delete(pods, patch.GetNamespace(), patch.GetName()+"-0"); err != nil {
				t.Logf("no pod of %s: %v", patch.GetName(), err)
			}
			return false, nil, nil // the patch itself is applied as usual
		})
	}
	return kube
}
