package main

// This file: the pod status the agent writes, as the kubelet does.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// push writes the pod's status, as the kubelet does, with the node's identity.
func (r *podRunner) push(ctx context.Context, mutate func(s *corev1.PodStatus)) {
	r.mu.Lock()
	mutate(&r.status)
	status := *r.status.DeepCopy()
	r.mu.Unlock()
	pods := r.a.client.CoreV1().Pods(r.pod.Namespace)
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := pods.Get(ctx, r.pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != r.pod.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), r.pod.Name)
		}
		cur.Status = status
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		r.logf("status: %v", err)
	}
}

func condition(t corev1.PodConditionType, ok bool) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
}

func setCondition(s *corev1.PodStatus, c corev1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status != c.Status {
				s.Conditions[i] = c
			}
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

func setContainer(list *[]corev1.ContainerStatus, cs corev1.ContainerStatus) {
	for i := range *list {
		if (*list)[i].Name == cs.Name {
			(*list)[i] = cs
			return
		}
	}
	*list = append(*list, cs)
}

// restartCount and bumpRestart keep each container's restarts.
func (r *podRunner) restartCount(name string, init bool) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts[fmt.Sprint(init, name)]
}

func (r *podRunner) bumpRestart(name string, init bool) { r.restarts[fmt.Sprint(init, name)]++ }

// updateReady sets the pod's Ready conditions from its containers.
func (r *podRunner) updateReady(s *corev1.PodStatus) {
	all := len(s.ContainerStatuses) > 0
	for _, cs := range s.ContainerStatuses {
		all = all && cs.Ready
	}
	setCondition(s, condition(corev1.ContainersReady, all))
	setCondition(s, condition(corev1.PodReady, all))
}
