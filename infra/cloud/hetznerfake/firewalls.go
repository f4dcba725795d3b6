package hetznerfake

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

func (s *Server) listFirewalls(w http.ResponseWriter, r *http.Request) {
	match := nameFilter(r)
	fws := sortedByID(s.firewalls, func(f schema.Firewall) bool { return match(f.Name) })
	writeList(w, "firewalls", fws, len(fws))
}

// checkRules refuses what the real API refuses in firewall rules: an incoming rule
// without source networks, or a source that is not a network in CIDR notation.
func checkRules(in []schema.FirewallRuleRequest) error {
	for _, r := range in {
		if r.Direction == "in" && len(r.SourceIPs) == 0 {
			return fmt.Errorf("invalid_input: an incoming rule has no source_ips")
		}
		for _, ip := range r.SourceIPs {
			if p, err := netip.ParsePrefix(ip); err != nil || p.Masked() != p {
				return fmt.Errorf("invalid_input: source_ips: %q is not a valid network in CIDR notation", ip)
			}
		}
	}
	return nil
}

// FirewallSources returns the source networks of the firewall named name's incoming
// rule for port ("22", "6443"), nil when there is none.
func (s *Server) FirewallSources(name, port string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.firewalls {
		if f.Name != name {
			continue
		}
		for _, r := range f.Rules {
			if r.Direction == "in" && r.Port != nil && *r.Port == port {
				return slices.Sorted(slices.Values(r.SourceIPs))
			}
		}
	}
	return nil
}

func rules(in []schema.FirewallRuleRequest) []schema.FirewallRule {
	out := []schema.FirewallRule{}
	for _, r := range in {
		out = append(out, schema.FirewallRule{Direction: r.Direction, SourceIPs: r.SourceIPs, DestinationIPs: r.DestinationIPs, Protocol: r.Protocol, Port: r.Port, Description: r.Description})
	}
	return out
}

func (s *Server) createFirewall(w http.ResponseWriter, r *http.Request) {
	var req schema.FirewallCreateRequest
	if !decode(w, r, &req) {
		return
	}
	if err := checkRules(req.Rules); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_input", err.Error())
		return
	}
	f := schema.Firewall{ID: s.id(), Name: req.Name, Labels: deref(req.Labels), Created: time.Now(), Rules: rules(req.Rules), AppliedTo: []schema.FirewallResource{}}
	s.firewalls[f.ID] = f
	writeJSON(w, http.StatusCreated, schema.FirewallCreateResponse{Firewall: f, Actions: []schema.Action{}})
}

func (s *Server) setRules(w http.ResponseWriter, r *http.Request) {
	f, ok := s.firewalls[pathID(r)]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "firewall not found")
		return
	}
	var req schema.FirewallActionSetRulesRequest
	if !decode(w, r, &req) {
		return
	}
	if err := checkRules(req.Rules); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_input", err.Error())
		return
	}
	f.Rules = rules(req.Rules)
	s.firewalls[f.ID] = f
	writeJSON(w, http.StatusCreated, schema.FirewallActionSetRulesResponse{Actions: []schema.Action{s.action("set_firewall_rules")}})
}

func (s *Server) deleteFirewall(w http.ResponseWriter, r *http.Request) {
	id := pathID(r)
	if _, ok := s.firewalls[id]; !ok {
		writeError(w, http.StatusNotFound, "not_found", "firewall not found")
		return
	}
	for _, srv := range s.servers {
		if slices.ContainsFunc(srv.PublicNet.Firewalls, func(f schema.ServerFirewall) bool { return f.ID == id }) {
			writeError(w, http.StatusConflict, "resource_in_use", "firewall is still applied to a server")
			return
		}
	}
	delete(s.firewalls, id)
	w.WriteHeader(http.StatusNoContent)
}
