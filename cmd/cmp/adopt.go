package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/adopt"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// adoptCmd brings a running app's dynamically provisioned claims under
// argocd-rbd-dr: the volumes: of rbd-dr.yaml from each claim's RBD image,
// and with --apply the images kept (Retain) while the claims are taken over.
func adoptCmd(sys system) *cobra.Command {
	var kubeconfig, kubeContext, namespace, write string
	var claims []string
	var apply bool
	cmd := &cobra.Command{
		Use:   "adopt --context CTX --namespace NS [--claims A,B] [--write DIR/rbd-dr.yaml] [--apply]",
		Short: "Find the RBD image of each claim of a running app: print (or write) the volumes: of rbd-dr.yaml; --apply sets their volumes to Retain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if namespace == "" {
				return fmt.Errorf("give --namespace, the namespace the app runs in")
			}
			kube, err := sys.kubeClient(kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			found, err := adopt.Find(cmd.Context(), kube, namespace, claims)
			if err != nil {
				return fmt.Errorf("nothing changed: %w", err)
			}
			volumes := make([]config.Volume, len(found))
			for i, c := range found {
				volumes[i] = c.Volume
			}
			block := config.VolumesBlock(volumes)
			// The edit is made, and checked, before any volume is changed.
			var edited []byte
			var mode os.FileMode
			if write != "" {
				data, err := os.ReadFile(write)
				if err != nil {
					return fmt.Errorf("reading %s: %w; nothing changed", write, err)
				}
				st, err := os.Stat(write)
				if err != nil {
					return err
				}
				mode = st.Mode().Perm()
				appDir, _ := filepath.Abs(filepath.Dir(write))
				if edited, err = config.SetVolumes(data, block, config.Options{DisplayName: write, AppDir: appDir, RepoRoot: appDir}); err != nil {
					return err
				}
			}
			var retained []string
			if apply {
				if retained, err = adopt.Retain(cmd.Context(), kube, found); err != nil {
					return fmt.Errorf("%w (set to Retain before it: %s)", err, strings.Join(retained, ", "))
				}
			}
			if write != "" {
				if err := replaceFile(write, strings.NewReader(string(edited)), mode); err != nil {
					return fmt.Errorf("writing %s: %w", write, err)
				}
				fmt.Fprintf(sys.stdout, "%s: volumes set from %d claim(s) of namespace %s\n", write, len(found), namespace)
			} else {
				fmt.Fprint(sys.stdout, block)
			}
			// The rest is for the person: on stderr when stdout is the block.
			steps := sys.stdout
			if write == "" {
				steps = sys.stderr
			}
			adoptSteps(steps, found, retained, apply, namespace)
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&kubeconfig, "kubeconfig", "", "the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	flags.StringVar(&kubeContext, "context", "", "the kubeconfig context of the cluster the app runs in (default: the current one)")
	flags.StringVarP(&namespace, "namespace", "n", "", "the app's namespace (required)")
	flags.StringSliceVar(&claims, "claims", nil, "only these claims (default: every claim in the namespace)")
	flags.StringVar(&write, "write", "", "set the volumes: of this rbd-dr.yaml instead of printing them")
	flags.BoolVar(&apply, "apply", false, "set each claim's PersistentVolume to the Retain reclaim policy, so its image survives the take-over")
	return cmd
}

// radosNamespaces are the RADOS namespaces of the found images, each once.
func radosNamespaces(found []adopt.Claim) []string {
	var out []string
	for _, c := range found {
		if ns := c.Volume.Namespace; ns != "" && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// adoptSteps prints what is left to do, with the names filled in.
func adoptSteps(w io.Writer, found []adopt.Claim, retained []string, applied bool, namespace string) {
	var pvcs, pvs, specs []string
	for _, c := range found {
		pvcs, pvs, specs = append(pvcs, c.Volume.PVC), append(pvs, c.PV), append(specs, c.Volume.Spec())
	}
	fmt.Fprintln(w, "\nnext, to take the app over without losing a byte:")
	if ns := radosNamespaces(found); len(ns) > 0 {
		fmt.Fprintf(w, "  0. the images are in RADOS namespace %s: the platform's settings must give namespace %s\n", strings.Join(ns, ", "), namespace)
		fmt.Fprintln(w, "     radosNamespace: that namespace (one per app namespace) and its clusterIDs, or the plugin looks for them outside it")
	}
	if applied {
		fmt.Fprintf(w, "  1. reclaim policy Retain on every volume (changed now: %d)\n", len(retained))
	} else {
		fmt.Fprintln(w, "  1. run again with --apply: each volume to Retain, or deleting a claim deletes its image")
	}
	fmt.Fprintf(w, "  2. on this site's Ceph, mirror each image by snapshot, and check the schedule covers the pool:\n")
	for _, s := range specs {
		fmt.Fprintf(w, "       rbd mirror image enable %s snapshot\n", s)
	}
	fmt.Fprintln(w, "     and wait until the other site replays them (argocd-rbd-dr status DIR)")
	fmt.Fprintln(w, "  3. stop the app (its workloads at 0 replicas, its CronJobs suspended) and delete the finished Jobs")
	fmt.Fprintln(w, "     that mount the claims: a claim goes only once no pod uses it, and a finished pod still does")
	fmt.Fprintln(w, "  4. delete the old Application without its resources (argocd app delete APP --cascade=false),")
	fmt.Fprintf(w, "     then the claims and their volumes (Retain keeps the images):\n       kubectl -n %s delete pvc %s\n       kubectl delete pv %s\n", namespace, strings.Join(pvcs, " "), strings.Join(pvs, " "))
	fmt.Fprintln(w, "  5. commit rbd-dr.yaml with the overlays and create the plugin's Applications: the sync binds")
	fmt.Fprintln(w, "     new claims to static volumes of the same images and starts the app (docs/adopt.md)")
}

// kubeClient connects with a kubeconfig context, as kubectl would.
func (sys system) kubeClient(kubeconfig, kubeContext string) (dynamic.Interface, error) {
	if sys.kube != nil {
		return sys.kube, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig (context %q): %w", kubeContext, err)
	}
	kube, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return kube, nil
}
