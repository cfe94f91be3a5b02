// Package cmpenv is the contract with Argo CD's cmp-server: the parameters the
// plugin takes and the variables of Argo CD's build environment it reads (one
// table, from which plugin/plugin.yaml and the reference's table (docs/reference.md) are generated), and
// the environment a generate call receives.
package cmpenv

import (
	"fmt"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// PluginName is the ConfigManagementPlugin's name; Applications refer to it.
const PluginName = "rbd-dr"

// Binary is the command the sidecar runs.
const Binary = "argocd-rbd-dr"

// Parameter is one setting an Application can give the plugin, either as a
// plugin parameter (PARAM_<NAME>, wins) or as plugin env (ARGOCD_ENV_<NAME>).
type Parameter struct {
	Name    string
	Title   string
	Tooltip string
}

// ParamEnv is the variable Argo CD sets for the parameter.
func (p Parameter) ParamEnv() string { return "PARAM_" + envName(p.Name) }

// Env is the parameter's name in an Application's spec.source.plugin.env.
func (p Parameter) Env() string { return envName(p.Name) }

// PluginEnv is the variable Argo CD sets for that plugin env entry.
func (p Parameter) PluginEnv() string { return "ARGOCD_ENV_" + p.Env() }

// envName is how Argo CD turns a parameter name into a variable name.
func envName(name string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name))
}

// Parameters is the one table of what the plugin reads from an Application.
var Parameters = []Parameter{
	{
		Name:    "site",
		Title:   "Site",
		Tooltip: "The site this Application deploys to; one of the sites in rbd-dr.yaml. Also read from plugin env SITE.",
	},
	{
		Name:    "mode",
		Title:   "Mode",
		Tooltip: "site (the default): render this folder for one site. apps: render one Application per site, the app-of-apps. Also read from plugin env MODE.",
	},
}

// Site and Mode are the parameters of the table.
var (
	Site = Parameters[0]
	Mode = Parameters[1]
)

// The modes.
const (
	ModeSite = "site"
	ModeApps = "apps"
)

// variable is one variable of Argo CD's build environment that the plugin
// reads.
type variable struct {
	Name string
	// From is what Argo CD sets it from.
	From string
	// Meaning is what the plugin does with it.
	Meaning string
}

// The build environment variables the plugin reads.
var (
	sourcePath = variable{
		Name: "ARGOCD_APP_SOURCE_PATH", From: "the Application's source path",
		Meaning: "the app folder in the repository; the repository root is the working folder minus this path, and nothing outside it is read",
	}
	appNamespace = variable{
		Name: "ARGOCD_APP_NAMESPACE", From: "the Application's destination namespace",
		Meaning: "where PVCs without a namespace live",
	}
	sourceRepoURL = variable{
		Name: "ARGOCD_APP_SOURCE_REPO_URL", From: "the Application's source repository",
		Meaning: "in apps mode, handed on to each site's Application",
	}
	sourceRevision = variable{
		Name: "ARGOCD_APP_SOURCE_TARGET_REVISION", From: "the Application's target revision",
		Meaning: "in apps mode, handed on to each site's Application",
	}
)

// buildEnv is the table of them, in the order docs/reference.md lists them.
var buildEnv = []variable{sourcePath, appNamespace, sourceRepoURL, sourceRevision}

// Env is what one generate call is told by Argo CD.
type Env struct {
	Site string
	// Mode is ModeSite or ModeApps.
	Mode string
	// Namespace is the Application's destination namespace.
	Namespace string
	// SourcePath is the app folder relative to the repository root.
	SourcePath string
	// RepoURL and TargetRevision are the Application's source, which the
	// app-of-apps hands on to the Application of each site.
	RepoURL        string
	TargetRevision string
}

// Read takes the contract's variables from getenv (os.Getenv in the binary).
func Read(getenv func(string) string) Env {
	mode := value(getenv, Mode)
	if mode == "" {
		mode = ModeSite
	}
	return Env{
		Site:           value(getenv, Site),
		Mode:           mode,
		Namespace:      getenv(appNamespace.Name),
		SourcePath:     getenv(sourcePath.Name),
		RepoURL:        getenv(sourceRepoURL.Name),
		TargetRevision: getenv(sourceRevision.Name),
	}
}

// value is the parameter's value: the plugin parameter wins over plugin env.
func value(getenv func(string) string, p Parameter) string {
	if v := getenv(p.ParamEnv()); v != "" {
		return v
	}
	return getenv(p.PluginEnv())
}

// RepoRoot is the root of the repository the cmp-server unpacked: the app
// folder minus ARGOCD_APP_SOURCE_PATH.
func (e Env) RepoRoot(appDir string) (string, error) {
	rel := filepath.Clean(filepath.FromSlash(strings.Trim(e.SourcePath, "/")))
	if rel == "." || rel == "" {
		return appDir, nil
	}
	if strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%s %q leaves the repository", sourcePath.Name, e.SourcePath)
	}
	root := appDir
	for range strings.Split(rel, string(filepath.Separator)) {
		root = filepath.Dir(root)
	}
	if filepath.Join(root, rel) != filepath.Clean(appDir) {
		return "", fmt.Errorf("the working folder %s does not end in %s %q; run generate in the app folder", appDir, sourcePath.Name, e.SourcePath)
	}
	return root, nil
}

// Announcement is one entry of the parameters announcement, with the JSON
// names of Argo CD's ParameterAnnouncement.
type Announcement struct {
	Name           string            `json:"name"`
	Title          string            `json:"title,omitempty"`
	Tooltip        string            `json:"tooltip,omitempty"`
	ItemType       string            `json:"itemType,omitempty"`
	CollectionType string            `json:"collectionType,omitempty"`
	String         string            `json:"string,omitempty"`
	Map            map[string]string `json:"map,omitempty"`
}

// StaticAnnouncements are the table's parameters, as plugin.yaml lists them.
func StaticAnnouncements() []Announcement {
	out := make([]Announcement, len(Parameters))
	for i, p := range Parameters {
		out[i] = Announcement{Name: p.Name, Title: p.Title, Tooltip: p.Tooltip, ItemType: "string", CollectionType: "string"}
	}
	return out
}

type command struct {
	Command []string `json:"command"`
	Args    []string `json:"args,omitempty"`
}

// PluginConfigYAML is plugin/plugin.yaml, generated from the table above.
func PluginConfigYAML() ([]byte, error) {
	cfg := map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "ConfigManagementPlugin",
		"metadata":   map[string]any{"name": PluginName},
		"spec": map[string]any{
			"discover": map[string]any{"fileName": config.FileName},
			"generate": command{Command: []string{Binary, "generate"}},
			"parameters": map[string]any{
				"static":  StaticAnnouncements(),
				"dynamic": command{Command: []string{Binary, "parameters"}},
			},
		},
	}
	body, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding plugin.yaml: %w", err)
	}
	header := "# Generated from pkg/cmpenv's parameter table; refresh with: go test ./plugin -update\n"
	return append([]byte(header), body...), nil
}

// EnvTable is the reference's table (docs/reference.md) of what Argo CD passes, generated from the
// parameter table and buildEnv; refresh it with: go test ./pkg/cmpenv -update
func EnvTable() string {
	var b strings.Builder
	b.WriteString("| variable | from | meaning |\n| --- | --- | --- |\n")
	for _, p := range Parameters {
		fmt.Fprintf(&b, "| `%s`, `%s` | the plugin parameter `%s` (wins), or plugin env `%s` | %s |\n",
			p.ParamEnv(), p.PluginEnv(), p.Name, p.Env(), p.Tooltip)
	}
	for _, v := range buildEnv {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, v.From, v.Meaning)
	}
	return b.String()
}
