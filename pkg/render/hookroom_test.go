package render_test

import (
	"strings"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
)

// What the overlay may hold beside the hooks: quotas, limits and network
// policies that leave them room are accepted; the ones that do not are
// refused with the object and why (and more in cmd/cmp/testdata/errors).
func TestHookRoom(t *testing.T) {
	cases := []struct{ name, objects, want string }{
		{"a quota that fits", `apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: shop}
spec: {hard: {requests.cpu: "1", requests.memory: 1Gi, limits.memory: 2Gi, pods: "20"}}
`, ""},
		{"a scoped quota is not judged", `apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: shop}
spec: {hard: {limits.cpu: "1"}, scopes: [NotTerminating]}
`, ""},
		{"no pod at all", `apiVersion: v1
kind: ResourceQuota
metadata: {name: none, namespace: shop}
spec: {hard: {count/jobs.batch: "0"}}
`, "ResourceQuota none allows count/jobs.batch 0 in all"},
		{"limits that fit", `apiVersion: v1
kind: LimitRange
metadata: {name: l, namespace: shop}
spec: {limits: [{type: Container, max: {memory: 1Gi, cpu: "2"}, min: {memory: 64Mi}, default: {cpu: 500m}}]}
`, ""},
		{"a minimum over the request", `apiVersion: v1
kind: LimitRange
metadata: {name: big, namespace: shop}
spec: {limits: [{type: Container, min: {cpu: 100m}}]}
`, "LimitRange big asks a Container for at least 100m cpu, more than a hook container's 50m"},
		{"a default limit under the request", `apiVersion: v1
kind: LimitRange
metadata: {name: d, namespace: shop}
spec: {limits: [{type: Container, default: {cpu: 10m}}]}
`, "LimitRange d gives a container without a cpu limit the limit 10m, under a hook container's request of 50m"},
		{"ingress only", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
`, ""},
		{"egress to the monitors", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-out, namespace: shop}
spec: {podSelector: {}, policyTypes: [Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ceph, namespace: shop}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/managed-by: argocd-rbd-dr}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 192.0.2.0/24}}], ports: [{protocol: TCP, port: 3300, endPort: 7300}]}]
`, ""},
		{"a deny-all egress for every pod", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-out, namespace: shop}
spec: {podSelector: {}, policyTypes: [Egress]}
`, "NetworkPolicy [deny-out] selects the promote hook pods for egress and lets none of them reach a's Ceph monitor 192.0.2.1:6789"},
		{"the monitor's port left out", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-only, namespace: shop}
spec:
  podSelector: {matchExpressions: [{key: rbd-dr.io/step, operator: Exists}]}
  egress: [{ports: [{port: 443}, {port: 6789, protocol: UDP}]}]
`, "NetworkPolicy [web-only] selects the promote hook pods"},
		{"a policy for other pods", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress]}
`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, role := range []render.Role{render.Active, render.Passive} {
				_, err := renderInline(t, role, map[string]string{
					"app/overlay/kustomization.yaml": "resources: [writer.yaml, extra.yaml]\n",
					"app/overlay/writer.yaml":        writer,
					"app/overlay/extra.yaml":         c.objects,
				})
				switch {
				case c.want == "" && err != nil:
					t.Errorf("%s: %v", role, err)
				case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
					t.Errorf("%s: got %v, want %q", role, err, c.want)
				}
			}
		})
	}
}
