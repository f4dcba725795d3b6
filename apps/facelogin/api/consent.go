package api

import (
	"net/http"
	"sort"
)

// ConsentVersion names the consent text people accept before their face is enrolled; it is
// stored with their account, together with the language they read it in. Every language's
// text is a binding translation of the same version: change the version whenever any text
// changes, and every translation with it.
const ConsentVersion = "2026-01"

// Consent is the binding consent text of ConsentVersion in one language.
type Consent struct {
	Version string `json:"version"`
	Lang    string `json:"lang"`
	Text    string `json:"text"`
}

// consents are the binding texts of ConsentVersion by language.
var consents = map[string]Consent{
	"en": {ConsentVersion, "en", "We compute mathematical descriptors from pictures of your face and store them encrypted, " +
		"only to recognise you when you sign in. We do not keep the pictures. You can delete your face data " +
		"at any time in your profile, and signing in with your password always remains possible.\n\n" +
		"You can withdraw this consent at any time by deleting your face data."},
	"de": {ConsentVersion, "de", "Wir berechnen aus Bildern Ihres Gesichts mathematische Merkmale (Deskriptoren) und speichern sie " +
		"verschlüsselt, ausschließlich um Sie bei der Anmeldung wiederzuerkennen. Die Bilder selbst speichern wir nicht. " +
		"Sie können Ihre Gesichtsdaten jederzeit in Ihrem Profil löschen; die Anmeldung mit Ihrem Passwort bleibt immer möglich.\n\n" +
		"Sie können diese Einwilligung jederzeit widerrufen, indem Sie Ihre Gesichtsdaten löschen."},
}

// ConsentFor returns the binding consent text in lang, or the English one when there is
// none in lang.
func ConsentFor(lang string) Consent {
	if c, ok := consents[lang]; ok {
		return c
	}
	return consents["en"]
}

// consentLangs lists the languages the consent text exists in, sorted.
func consentLangs() []string {
	var out []string
	for l := range consents {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// checkConsent checks an accepted consent names the current version in a language the text
// exists in ("" is English, for clients written before the translations).
func checkConsent(accept bool, version, lang string) (Consent, error) {
	if lang == "" {
		lang = "en"
	}
	c, ok := consents[lang]
	if !ok {
		return Consent{}, errorf(http.StatusBadRequest, "bad_consent_lang", "The consent text exists in %v; send one of them as consent_lang.", consentLangs())
	}
	if !accept || version != c.Version {
		return Consent{}, errorf(http.StatusBadRequest, "consent_required", "Read and accept the consent text (version %s) to enroll.", ConsentVersion)
	}
	return c, nil
}

// getConsent shows the consent text in the language asked for (?lang=de), for the page
// that sets up face sign-in again.
func (s *Server) getConsent(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ConsentFor(r.URL.Query().Get("lang")))
}
