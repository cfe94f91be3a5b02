package failover

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

var (
	podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	// workloads are what quiesce scales to zero.
	workloads = []schema.GroupVersionResource{
		{Group: "apps", Version: "v1", Resource: "deployments"},
		{Group: "apps", Version: "v1", Resource: "statefulsets"},
	}
)

// Quiesce (passive site) scales the Deployments and StatefulSets whose pods
// mount the PVCs to zero and waits until no pod uses them, so that no image
// is demoted under a running writer. Pods of other owners (Jobs, bare pods)
// are waited for too and named if they outlast the timeout.
func Quiesce(ctx context.Context, kube dynamic.Interface, namespace string, pvcs []string, o Options) Report {
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := o.Clock.Now()
	report := make(Report, len(pvcs))
	for i, pvc := range pvcs {
		report[i] = Result{Target: "pvc/" + pvc, Action: "none"}
	}
	fail := func(err error) Report {
		for i := range report {
			report[i].Err = err
			report[i].Took = o.Clock.Now().Sub(start)
		}
		return report
	}

	users, err := podsUsing(ctx, kube, namespace, pvcs)
	if err != nil {
		return fail(err)
	}
	for i, pvc := range pvcs {
		report[i].Before = describeUse(users[pvc])
	}
	scaled, err := scaleToZero(ctx, kube, namespace, pvcs)
	if err != nil {
		return fail(err)
	}
	for i, pvc := range pvcs {
		if len(scaled[pvc]) > 0 {
			report[i].Action = "scaled " + strings.Join(scaled[pvc], ", ") + " to 0"
		}
	}
	err = waitUntil(ctx, o, start.Add(o.Timeout), func() (bool, pace, error) {
		// Keep the last pods seen: a list that fails (at the deadline, say)
		// must not erase who holds the volumes from the message.
		now, err := podsUsing(ctx, kube, namespace, pvcs)
		if err != nil {
			return false, backOff, err
		}
		users = now
		return len(users) == 0, backOff, nil
	})
	if err != nil {
		var holders []string
		for pvc, pods := range users {
			holders = append(holders, fmt.Sprintf("%s (pods %s)", pvc, strings.Join(pods, ", ")))
		}
		sort.Strings(holders)
		return fail(fmt.Errorf("pods still use the volumes, so they are not demoted: %s; stop them (a Job or a bare pod is not scaled by argocd-rbd-dr): %w", strings.Join(holders, "; "), err))
	}
	for i := range report {
		report[i].After, report[i].Took = "unused", o.Clock.Now().Sub(start)
	}
	o.Log.WithField("namespace", namespace).Info("no pod uses the volumes")
	return report
}

// podsUsing maps each PVC to the pods (not yet finished) that mount it.
func podsUsing(ctx context.Context, kube dynamic.Interface, namespace string, pvcs []string) (map[string][]string, error) {
	list, err := kube.Resource(podsGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods in %s: %w", namespace, err)
	}
	users := map[string][]string{}
	for _, item := range list.Items {
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(item.Object, &pod); err != nil {
			return nil, fmt.Errorf("reading pod %s: %w", item.GetName(), err)
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, pvc := range claims(pod.Spec) {
			if slices.Contains(pvcs, pvc) {
				users[pvc] = append(users[pvc], pod.Name)
			}
		}
	}
	return users, nil
}

func claims(spec corev1.PodSpec) []string {
	var out []string
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

// scaleToZero patches every Deployment and StatefulSet whose pod template
// mounts one of the PVCs to zero replicas, and says which it scaled, by PVC.
func scaleToZero(ctx context.Context, kube dynamic.Interface, namespace string, pvcs []string) (map[string][]string, error) {
	scaled := map[string][]string{}
	zero := []byte(`{"spec":{"replicas":0}}`)
	for _, gvr := range workloads {
		list, err := kube.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing %s in %s: %w", gvr.Resource, namespace, err)
		}
		for _, item := range list.Items {
			used := templateClaims(item)
			var hit []string
			for _, pvc := range pvcs {
				if slices.Contains(used, pvc) {
					hit = append(hit, pvc)
				}
			}
			if len(hit) == 0 {
				continue
			}
			name := item.GetKind() + " " + item.GetName()
			if replicas, found, _ := unstructured.NestedInt64(item.Object, "spec", "replicas"); found && replicas == 0 {
				continue // already stopped: nothing done, nothing to report
			}
			if _, err := kube.Resource(gvr).Namespace(namespace).Patch(ctx, item.GetName(), types.MergePatchType, zero, metav1.PatchOptions{}); err != nil {
				return nil, fmt.Errorf("scaling %s to 0: %w", name, err)
			}
			for _, pvc := range hit {
				scaled[pvc] = append(scaled[pvc], name)
			}
		}
	}
	return scaled, nil
}

func templateClaims(obj unstructured.Unstructured) []string {
	volumes, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "volumes")
	var out []string
	for _, v := range volumes {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if name, ok, _ := unstructured.NestedString(m, "persistentVolumeClaim", "claimName"); ok {
			out = append(out, name)
		}
	}
	return out
}

func describeUse(pods []string) string {
	if len(pods) == 0 {
		return "unused"
	}
	return fmt.Sprintf("used by %d pod(s)", len(pods))
}
