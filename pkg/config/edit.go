package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// SetActive is the failover edit: the file with activeSite set to site and
// forcePromote set to force, and every other byte (comments, layout, order)
// as it was. The result must still be a valid policy. While forcePromote
// is true, only the force-promoted site may be named without force: moving
// away before the lost site has resynced would throw away the writes made
// since the disaster.
func SetActive(data []byte, site string, force bool, opts Options) ([]byte, error) {
	p, err := Parse(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid as it is; fix it first: %w", opts.DisplayName, err)
	}
	if _, ok := p.Site(site); !ok {
		return nil, fmt.Errorf("%q is not one of the sites in %s (%s); nothing changed", site, opts.DisplayName, strings.Join(p.SiteNames(), ", "))
	}
	if p.ForcePromote && site != p.ActiveSite && !force {
		return nil, fmt.Errorf("%s says forcePromote: true: %s was force-promoted and holds the only copy of the writes made since the disaster, "+
			"so moving the app to %s now would hand it back older data; nothing changed. "+
			"Fail back in three commits: when %s is back, let its sync demote and resync its images from %s and wait until they replay; "+
			"then `argocd-rbd-dr activate %s` sets forcePromote back to false; then `argocd-rbd-dr activate %s` relocates",
			opts.DisplayName, p.ActiveSite, site, site, p.ActiveSite, p.ActiveSite, site)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	lines := strings.SplitAfter(string(data), "\n")

	active := valueOf(root, "activeSite")
	if err := setScalar(lines, active, site); err != nil {
		return nil, err
	}
	if forceNode := valueOf(root, "forcePromote"); forceNode != nil {
		if err := setScalar(lines, forceNode, strconv.FormatBool(force)); err != nil {
			return nil, err
		}
	} else if force {
		// Put it right under activeSite, with activeSite's indentation.
		key := keyOf(root, "activeSite")
		if !strings.HasSuffix(lines[active.Line-1], "\n") {
			lines[active.Line-1] += "\n"
		}
		lines[active.Line-1] += strings.Repeat(" ", key.Column-1) + "forcePromote: true\n"
	}
	out := []byte(strings.Join(lines, ""))
	if _, err := Parse(out, opts); err != nil {
		return nil, fmt.Errorf("the edit would make %s invalid; nothing changed: %w", opts.DisplayName, err)
	}
	return out, nil
}

// setScalar replaces a plain or quoted scalar in place, keeping its style.
func setScalar(lines []string, n *yaml.Node, value string) error {
	if n == nil || n.Kind != yaml.ScalarNode || n.Line < 1 || n.Line > len(lines) {
		return errors.New("the value to change is not a plain value on one line; edit it by hand")
	}
	line := lines[n.Line-1]
	start := n.Column - 1
	var old, repl string
	switch n.Style {
	case 0:
		old, repl = n.Value, value
	case yaml.DoubleQuotedStyle:
		old, repl = strconv.Quote(n.Value), strconv.Quote(value)
	case yaml.SingleQuotedStyle:
		old, repl = "'"+n.Value+"'", "'"+value+"'"
	default:
		return errors.New("the value to change is not a plain value on one line; edit it by hand")
	}
	if start < 0 || !strings.HasPrefix(line[start:], old) {
		return fmt.Errorf("line %d does not hold %s where expected; edit it by hand", n.Line, old)
	}
	lines[n.Line-1] = line[:start] + repl + line[start+len(old):]
	return nil
}

func keyOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// VolumesBlock writes volumes as the volumes: key of rbd-dr.yaml, the
// defaults (image features, file system) left out.
func VolumesBlock(volumes []Volume) string {
	var b strings.Builder
	b.WriteString("volumes:\n")
	for _, v := range volumes {
		fmt.Fprintf(&b, "  - pvc: %s\n    pool: %s\n    image: %s\n    size: %s\n", v.PVC, v.Pool, v.Image, v.Size)
		if v.ImageFeatures != "" && v.ImageFeatures != DefaultImageFeatures {
			fmt.Fprintf(&b, "    imageFeatures: %s\n", v.ImageFeatures)
		}
		if v.FSType != "" && v.FSType != DefaultFSType {
			fmt.Fprintf(&b, "    fsType: %s\n", v.FSType)
		}
	}
	return b.String()
}

// SetVolumes is the adopt edit: the file with its top-level volumes: key
// replaced by block (VolumesBlock), or block added at the end, and every
// other byte as it was. The result must be a valid policy.
func SetVolumes(data []byte, block string, opts Options) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a YAML mapping; start from examples/wordpress/rbd-dr.yaml", opts.DisplayName)
	}
	root := doc.Content[0]
	lines := strings.SplitAfter(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var out []string
	if key := keyOf(root, "volumes"); key != nil {
		if key.Column != 1 {
			return nil, errors.New("volumes: is not at the start of its line; edit it by hand")
		}
		// The block runs from its key to the next top-level key (or the end).
		end := len(lines)
		for i := range root.Content {
			if k := root.Content[i]; i%2 == 0 && k.Line > key.Line && k.Line-1 < end {
				end = k.Line - 1
			}
		}
		// Comments and blank lines just above the next key belong to it.
		for end > key.Line && (strings.TrimSpace(lines[end-1]) == "" || strings.HasPrefix(strings.TrimSpace(lines[end-1]), "#")) {
			end--
		}
		out = append(append(append(out, lines[:key.Line-1]...), block), lines[end:]...)
	} else {
		out = append(out, lines...)
		if len(out) > 0 && !strings.HasSuffix(out[len(out)-1], "\n") {
			out[len(out)-1] += "\n"
		}
		out = append(out, block)
	}
	result := []byte(strings.Join(out, ""))
	if _, err := Parse(result, opts); err != nil {
		return nil, fmt.Errorf("with these volumes %s would not be valid; nothing changed: %w", opts.DisplayName, err)
	}
	return result, nil
}
