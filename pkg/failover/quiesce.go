package failover

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	model "github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// Quiesce (passive site) stops every workload whose pods mount the PVCs, as
// pkg/workload says (Deployments and StatefulSets scaled to zero, CronJobs
// suspended; a StatefulSet's claims include those of its
// volumeClaimTemplates), and waits until no pod uses them, so that no image
// is demoted under a running writer. Pods of other owners (a Job a CronJob
// started before it was suspended, bare pods) are waited for too and named
// if they outlast the timeout.
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
	stopped, err := stop(ctx, kube, namespace, pvcs, o.Kinds)
	if err != nil {
		return fail(err)
	}
	for i, pvc := range pvcs {
		if len(stopped[pvc]) > 0 {
			report[i].Action = strings.Join(stopped[pvc], ", ")
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

// PodsMounting is Options.InUse for the images' claims (image spec to PVC
// name) in namespace: the pods, not yet finished, that mount the claim. An
// image it was not given a claim for is an error, not "unused".
func PodsMounting(kube dynamic.Interface, namespace string, claims map[string]string) func(context.Context, rbd.Image) ([]string, error) {
	return func(ctx context.Context, img rbd.Image) ([]string, error) {
		pvc, ok := claims[img.String()]
		if !ok {
			return nil, fmt.Errorf("no PVC was given for %s, so the pods that mount it cannot be found", img)
		}
		users, err := podsUsing(ctx, kube, namespace, []string{pvc})
		return users[pvc], err
	}
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

// stop stops every workload whose pods mount one of the PVCs, and says
// what it did, by PVC ("scaled Deployment web to 0", "suspended CronJob
// backup"). One already stopped is left alone and not reported.
func stop(ctx context.Context, kube dynamic.Interface, namespace string, pvcs []string, kinds model.Catalog) (map[string][]string, error) {
	if kinds == nil {
		kinds = model.Core
	}
	done := map[string][]string{}
	for _, k := range kinds.Stoppable() {
		gvr := schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource}
		list, err := kube.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			// The cluster has no such resource (Argo Rollouts not
			// installed), so nothing of the kind runs here.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s in %s: %w", k.Resource, namespace, err)
		}
		for _, item := range list.Items {
			name := k.Name + " " + item.GetName()
			used, err := k.Claims(item.Object)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			var hit []string
			for _, pvc := range pvcs {
				if slices.Contains(used, pvc) {
					hit = append(hit, pvc)
				}
			}
			if len(hit) == 0 || k.Stopped(item.Object) {
				continue
			}
			if _, err := kube.Resource(gvr).Namespace(namespace).Patch(ctx, item.GetName(), types.MergePatchType, k.StopPatch(), metav1.PatchOptions{}); err != nil {
				return nil, fmt.Errorf("stopping %s: %w", name, err)
			}
			for _, pvc := range hit {
				done[pvc] = append(done[pvc], k.StopReport(item.GetName()))
			}
		}
	}
	return done, nil
}

func describeUse(pods []string) string {
	if len(pods) == 0 {
		return "unused"
	}
	return fmt.Sprintf("used by %d pod(s)", len(pods))
}
