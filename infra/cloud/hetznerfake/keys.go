package hetznerfake

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"golang.org/x/crypto/ssh"
)

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	match := nameFilter(r)
	fp := r.URL.Query().Get("fingerprint")
	keys := sortedByID(s.keys, func(k schema.SSHKey) bool { return match(k.Name) && (fp == "" || k.Fingerprint == fp) })
	writeList(w, "ssh_keys", keys, len(keys))
}

// AddKey adds an SSH key as someone other than edgeline would (the console, another
// tool), with the given labels, and returns its ID. It enforces the same rules as the
// API.
func (s *Server) AddKey(name, publicKey string, labels map[string]string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, status, err := s.newKey(name, publicKey, labels)
	if err != nil {
		return 0, fmt.Errorf("%d %s", status, err)
	}
	return k.ID, nil
}

// Keys returns the names of the SSH keys in the project, sorted by ID.
func (s *Server) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range sortedByID(s.keys, func(schema.SSHKey) bool { return true }) {
		out = append(out, k.Name)
	}
	return out
}

// newKey adds a key the way the real API does: the public key must parse, and neither its
// name nor its fingerprint (MD5, as the API reports it) may be in the project already.
func (s *Server) newKey(name, publicKey string, labels map[string]string) (schema.SSHKey, int, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return schema.SSHKey{}, http.StatusBadRequest, fmt.Errorf("invalid_input: invalid public key")
	}
	fp := ssh.FingerprintLegacyMD5(pub)
	for _, k := range s.keys {
		if k.Name == name {
			return schema.SSHKey{}, http.StatusConflict, fmt.Errorf("uniqueness_error: SSH key with the same name already exists")
		}
		if k.Fingerprint == fp {
			return schema.SSHKey{}, http.StatusConflict, fmt.Errorf("uniqueness_error: SSH key with the same fingerprint already exists")
		}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	k := schema.SSHKey{ID: s.id(), Name: name, Fingerprint: fp, PublicKey: publicKey, Created: time.Now(), Labels: labels}
	s.keys[k.ID] = k
	return k, 0, nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req schema.SSHKeyCreateRequest
	if !decode(w, r, &req) {
		return
	}
	k, status, err := s.newKey(req.Name, req.PublicKey, deref(req.Labels))
	if err != nil {
		code, msg, _ := strings.Cut(err.Error(), ": ")
		writeError(w, status, code, msg)
		return
	}
	writeJSON(w, http.StatusCreated, schema.SSHKeyCreateResponse{SSHKey: k})
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.keys[pathID(r)]; !ok {
		writeError(w, http.StatusNotFound, "not_found", "SSH key not found")
		return
	}
	delete(s.keys, pathID(r))
	w.WriteHeader(http.StatusNoContent)
}
