package render

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/resmap"
	kresource "sigs.k8s.io/kustomize/api/resource"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

// hookRoom refuses overlay objects in the app's namespace that leave the
// hook pods no room to run, which would stop a failover with the reason
// only in Job events: a ResourceQuota or LimitRange one hook pod cannot
// meet, and NetworkPolicies that cut the Ceph steps off from the monitors
// the settings give. It sees only what the overlay holds (the platform's
// own policies in the namespace are its to check), and of the network only
// the monitors: the OSDs' addresses are Ceph's.
func hookRoom(app resmap.ResMap, pl *placement) error {
	var policies []networkingv1.NetworkPolicy
	policyRes := map[string]*kresource.Resource{}
	for _, res := range app.Resources() {
		gvk := res.GetGvk()
		// Only these three kinds are read: the rest of the app is not
		// converted on every generate.
		if !(gvk.Group == "" && (gvk.Kind == "ResourceQuota" || gvk.Kind == "LimitRange")) && !(gvk.Group == "networking.k8s.io" && gvk.Kind == "NetworkPolicy") {
			continue
		}
		m, err := res.Map()
		if err != nil {
			return refuse(fmt.Errorf("%s %s: %w", gvk.Kind, res.GetName(), err), res)
		}
		switch {
		case gvk.Group == "" && gvk.Kind == "ResourceQuota":
			var q corev1.ResourceQuota
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &q); err != nil {
				return refuse(fmt.Errorf("ResourceQuota %s: %w", res.GetName(), err), res)
			}
			if err := quotaRoom(&q, pl.pods); err != nil {
				return refuse(err, res)
			}
		case gvk.Group == "" && gvk.Kind == "LimitRange":
			var lr corev1.LimitRange
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &lr); err != nil {
				return refuse(fmt.Errorf("LimitRange %s: %w", res.GetName(), err), res)
			}
			if err := limitRoom(&lr, pl.pods); err != nil {
				return refuse(err, res)
			}
		case gvk.Group == "networking.k8s.io" && gvk.Kind == "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &np); err != nil {
				return refuse(fmt.Errorf("NetworkPolicy %s: %w", res.GetName(), err), res)
			}
			policies = append(policies, np)
			policyRes[np.Name] = res
		}
	}
	culprits, err := monitorsReachable(policies, pl)
	if err != nil {
		var res []*kresource.Resource
		for _, name := range culprits {
			res = append(res, policyRes[name])
		}
		return refuse(err, res...)
	}
	return nil
}

// hookContainer is what one hook container asks for: every container of a
// hook pod gets the settings' resources, and a pod's need is one
// container's (an init container runs before the main one).
func hookContainer(h config.HookPods) (requests, limits corev1.ResourceList) {
	requests, limits = corev1.ResourceList{}, corev1.ResourceList{}
	if h.Resources == nil {
		return requests, limits
	}
	// The settings check parsed every quantity: one that does not parse
	// cannot reach here, and is left out rather than panicking.
	for name, q := range h.Resources.Requests {
		if v, err := resource.ParseQuantity(q); err == nil {
			requests[corev1.ResourceName(name)] = v
		}
	}
	for name, q := range h.Resources.Limits {
		if v, err := resource.ParseQuantity(q); err == nil {
			limits[corev1.ResourceName(name)] = v
		}
	}
	return requests, limits
}

const fixHookPods = "change the overlay's object, or ask the platform team for hookPods in the settings that fit it"

// quotaRoom checks one hook pod against a quota's hard limits: a quota on a
// resource makes every pod state it, and a pod over the whole quota is
// never admitted. A quota with scopes is not judged (which pods it counts
// is not the overlay's to say).
func quotaRoom(q *corev1.ResourceQuota, h config.HookPods) error {
	if len(q.Spec.Scopes) > 0 || q.Spec.ScopeSelector != nil {
		return nil
	}
	requests, limits := hookContainer(h)
	for _, name := range sortedNames(q.Spec.Hard) {
		hard := q.Spec.Hard[name]
		var need resource.Quantity
		var stated bool
		switch name {
		case corev1.ResourcePods, "count/jobs.batch":
			need, stated = *resource.NewQuantity(1, resource.DecimalSI), true
		case corev1.ResourceRequestsCPU, corev1.ResourceCPU:
			need, stated = requests[corev1.ResourceCPU]
		case corev1.ResourceRequestsMemory, corev1.ResourceMemory:
			need, stated = requests[corev1.ResourceMemory]
		case corev1.ResourceLimitsCPU:
			need, stated = limits[corev1.ResourceCPU]
		case corev1.ResourceLimitsMemory:
			need, stated = limits[corev1.ResourceMemory]
		default:
			continue
		}
		switch {
		case !stated:
			return fmt.Errorf("ResourceQuota %s limits %s, so every pod must state it, but the hook pods do not: the quota would refuse them and a failover would stop at its first hook; %s", q.Name, name, fixHookPods)
		case need.Cmp(hard) > 0:
			return fmt.Errorf("ResourceQuota %s allows %s %s in all, less than one hook pod needs (%s): a failover would stop at its first hook; %s", q.Name, name, hard.String(), need.String(), fixHookPods)
		}
	}
	return nil
}

// limitRoom checks a hook container against a LimitRange's bounds for
// containers and pods.
func limitRoom(lr *corev1.LimitRange, h config.HookPods) error {
	requests, limits := hookContainer(h)
	for _, item := range lr.Spec.Limits {
		if item.Type != corev1.LimitTypeContainer && item.Type != corev1.LimitTypePod {
			continue
		}
		for _, name := range sortedNames(item.Max) {
			max := item.Max[name]
			got, ok := limits[name]
			if !ok {
				got, ok = requests[name]
			}
			if ok && got.Cmp(max) > 0 {
				return fmt.Errorf("LimitRange %s allows a %s at most %s %s, less than a hook container's %s: the hook pods would be refused; %s", lr.Name, item.Type, max.String(), name, got.String(), fixHookPods)
			}
		}
		// A container without a limit gets the range's default one, which
		// must not be under what it requests.
		for _, name := range sortedNames(item.Default) {
			def := item.Default[name]
			if _, limited := limits[name]; limited {
				continue
			}
			if req, ok := requests[name]; ok && req.Cmp(def) > 0 {
				return fmt.Errorf("LimitRange %s gives a container without a %s limit the limit %s, under a hook container's request of %s: the hook pods would be refused; %s", lr.Name, name, def.String(), req.String(), fixHookPods)
			}
		}
		for _, name := range sortedNames(item.Min) {
			min := item.Min[name]
			got, ok := requests[name]
			if !ok {
				got, ok = limits[name]
			}
			if ok && got.Cmp(min) < 0 {
				return fmt.Errorf("LimitRange %s asks a %s for at least %s %s, more than a hook container's %s: the hook pods would be refused; %s", lr.Name, item.Type, min.String(), name, got.String(), fixHookPods)
			}
		}
	}
	return nil
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// monitorsReachable checks that every Ceph step's pod may still reach each
// monitor it connects to: NetworkPolicies allow, so once one selects a pod
// for egress, only what some selecting policy allows gets out. A refusal
// comes with the policies it is about.
func monitorsReachable(policies []networkingv1.NetworkPolicy, pl *placement) ([]string, error) {
	if len(policies) == 0 {
		return nil, nil
	}
	type target struct{ site, addr string }
	for _, step := range []hookcmd.Step{hookcmd.Promote, hookcmd.Demote, hookcmd.Resync, hookcmd.RPOCheck} {
		podLabels := klabels.Set(labels(pl.policy.Name, string(step)))
		var selecting []networkingv1.NetworkPolicy
		for _, np := range policies {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				return []string{np.Name}, fmt.Errorf("NetworkPolicy %s: spec.podSelector: %w", np.Name, err)
			}
			if sel.Matches(podLabels) && restrictsEgress(np) {
				selecting = append(selecting, np)
			}
		}
		if len(selecting) == 0 {
			continue
		}
		targets := []target{}
		for _, m := range pl.ceph.Monitors {
			targets = append(targets, target{pl.ceph.Name, m})
		}
		if pl.tenant.PeerReader != nil && pl.peer != nil && step.ReadsPeer() {
			for _, m := range pl.peer.Monitors {
				targets = append(targets, target{pl.peer.Name, m})
			}
		}
		for _, t := range targets {
			host, portText, err := net.SplitHostPort(t.addr)
			ip := net.ParseIP(host)
			port, perr := strconv.Atoi(portText)
			if err != nil || ip == nil || perr != nil {
				continue // a name, not an address: what it resolves to is not known here
			}
			if !slices.ContainsFunc(selecting, func(np networkingv1.NetworkPolicy) bool { return allowsEgress(np, ip, port) }) {
				names := make([]string, len(selecting))
				for i, np := range selecting {
					names[i] = np.Name
				}
				return names, fmt.Errorf("NetworkPolicy %v selects the %s hook pods for egress and lets none of them reach %s's Ceph monitor %s: the step would hang until it times out and the failover stop; allow egress to the monitors (and OSDs) of the settings, or select the pods labelled %s=%s out", names, step, t.site, t.addr, StepLabel, step)
			}
		}
	}
	return nil, nil
}

func restrictsEgress(np networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return len(np.Spec.Egress) > 0 // only an egress section makes it an egress policy then
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// allowsEgress says whether one of the policy's egress rules lets TCP out
// to ip:port. A peer by pod or namespace selector matches pods only, not a
// monitor outside the cluster's pod network.
func allowsEgress(np networkingv1.NetworkPolicy, ip net.IP, port int) bool {
	for _, rule := range np.Spec.Egress {
		if !portAllowed(rule.Ports, port) {
			continue
		}
		if len(rule.To) == 0 {
			return true
		}
		for _, peer := range rule.To {
			if peer.IPBlock != nil && inBlock(peer.IPBlock, ip) {
				return true
			}
		}
	}
	return false
}

func portAllowed(ports []networkingv1.NetworkPolicyPort, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		// A named port names a container's port: not a monitor's.
		if p.Port.IntValue() == 0 {
			continue
		}
		end := p.Port.IntValue()
		if p.EndPort != nil {
			end = int(*p.EndPort)
		}
		if port >= p.Port.IntValue() && port <= end {
			return true
		}
	}
	return false
}

func inBlock(b *networkingv1.IPBlock, ip net.IP) bool {
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil || !cidr.Contains(ip) {
		return false
	}
	for _, ex := range b.Except {
		if _, e, err := net.ParseCIDR(ex); err == nil && e.Contains(ip) {
			return false
		}
	}
	return true
}
