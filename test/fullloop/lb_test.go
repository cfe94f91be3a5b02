package fullloop

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// loadBalancers is what an ingress controller and a cloud's load balancer
// would do on a site: give each Ingress and each Service of type
// LoadBalancer an address (127.0.0.1), which is what Argo CD's health
// checks wait for. It runs until ctx ends.
func loadBalancers(ctx context.Context, c *cluster) {
	lb := []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
	for ctx.Err() == nil {
		if ings, err := c.client.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{}); err == nil {
			for i := range ings.Items {
				ing := &ings.Items[i]
				if len(ing.Status.LoadBalancer.Ingress) == 0 {
					ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "127.0.0.1"}}
					_, _ = c.client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, ing, metav1.UpdateOptions{})
				}
			}
		}
		if svcs, err := c.client.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err == nil {
			for i := range svcs.Items {
				s := &svcs.Items[i]
				if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(s.Status.LoadBalancer.Ingress) == 0 {
					s.Status.LoadBalancer.Ingress = lb
					_, _ = c.client.CoreV1().Services(s.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
