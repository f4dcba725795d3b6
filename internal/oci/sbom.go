package oci

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// SPDX 2.3 documents, as much of the format as the images need.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files,omitempty"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	Supplier         string        `json:"supplier"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	SourceInfo       string        `json:"sourceInfo,omitempty"`
	LicenseConcluded string        `json:"licenseConcluded"`
	LicenseDeclared  string        `json:"licenseDeclared"`
	CopyrightText    string        `json:"copyrightText"`
	Comment          string        `json:"comment,omitempty"`
	ExternalRefs     []spdxExtRef  `json:"externalRefs,omitempty"`
	Checksums        []spdxCheckum `json:"checksums,omitempty"`
}

type spdxExtRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxFile struct {
	FileName         string        `json:"fileName"`
	SPDXID           string        `json:"SPDXID"`
	Checksums        []spdxCheckum `json:"checksums"`
	LicenseConcluded string        `json:"licenseConcluded"`
	CopyrightText    string        `json:"copyrightText"`
}

type spdxCheckum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// sbom describes the image of im for a: the image itself, the Debian packages its
// libraries come from, the Go modules linked into the binary, and the extra files.
func (b *Build) sbom(im Image, a Arch, bin string, pkgs []*Package) ([]byte, error) {
	p := a.Platform()
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        im.Name + " " + p.String(),
		CreationInfo: spdxCreationInfo{
			Created:  b.created().Format(time.RFC3339),
			Creators: []string{"Tool: edgeline-images"},
		},
	}
	imageID := "SPDXRef-Image"
	doc.Packages = append(doc.Packages, spdxPackage{
		SPDXID: imageID, Name: im.Name, VersionInfo: b.Version, Supplier: noAssertion,
		DownloadLocation: orNoAssertion(b.Source), LicenseConcluded: noAssertion, LicenseDeclared: noAssertion,
		CopyrightText: noAssertion, Comment: "revision " + b.Revision,
		ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", "pkg:oci/" + im.Name + "?arch=" + string(a)}},
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", imageID})
	distro := osRelease()
	for i, pk := range pkgs {
		id := fmt.Sprintf("SPDXRef-Deb-%d", i)
		purl := fmt.Sprintf("pkg:deb/%s/%s@%s?arch=%s", distroID(distro), pk.Name, url.PathEscape(pk.Version), pk.Arch)
		if d := distro["ID"] + "-" + distro["VERSION_ID"]; distro["ID"] != "" {
			purl += "&distro=" + d
		}
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: id, Name: pk.Name, VersionInfo: pk.Version, Supplier: noAssertion, DownloadLocation: noAssertion,
			SourceInfo: "built from source package " + pk.Source, LicenseConcluded: noAssertion,
			LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			Comment:      "licence terms in /usr/share/doc/" + pk.Name + "/copyright",
			ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", purl}},
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{imageID, "CONTAINS", id})
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read the Go build information of %s: %w (the binary must be built by Go)", bin, err)
	}
	mods := []spdxPackage{{Name: "stdlib", VersionInfo: info.GoVersion}}
	if info.Main.Path != "" {
		mods = append(mods, spdxPackage{Name: info.Main.Path, VersionInfo: info.Main.Version})
	}
	for _, m := range info.Deps {
		sp := spdxPackage{Name: m.Path, VersionInfo: m.Version}
		if m.Replace != nil {
			if m.Replace.Version == "" {
				sp.Comment = "replaced by the copy in " + m.Replace.Path
			} else {
				sp.Name, sp.VersionInfo = m.Replace.Path, m.Replace.Version
			}
		}
		mods = append(mods, sp)
	}
	for i, m := range mods {
		m.SPDXID = fmt.Sprintf("SPDXRef-Go-%d", i)
		m.Supplier, m.DownloadLocation = noAssertion, noAssertion
		m.LicenseConcluded, m.LicenseDeclared, m.CopyrightText = noAssertion, noAssertion, noAssertion
		m.ExternalRefs = []spdxExtRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + m.Name + versionSuffix(m.VersionInfo)}}
		doc.Packages = append(doc.Packages, m)
		doc.Relationships = append(doc.Relationships, spdxRelationship{imageID, "CONTAINS", m.SPDXID})
	}
	for i, f := range im.Files {
		id := fmt.Sprintf("SPDXRef-File-%d", i)
		doc.Files = append(doc.Files, spdxFile{FileName: "." + f.Path, SPDXID: id,
			Checksums:        []spdxCheckum{{"SHA256", strings.ToLower(f.SHA256)}},
			LicenseConcluded: noAssertion, CopyrightText: noAssertion})
		doc.Relationships = append(doc.Relationships, spdxRelationship{imageID, "CONTAINS", id})
	}
	// A namespace unique to this content: a UUID made from the document's own hash.
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	sum[6] = sum[6]&0x0f | 0x50 // version 5 layout (name-based)
	sum[8] = sum[8]&0x3f | 0x80
	doc.DocumentNamespace = fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	return json.MarshalIndent(doc, "", "  ")
}

func orNoAssertion(s string) string {
	if s == "" {
		return noAssertion
	}
	return s
}

func versionSuffix(v string) string {
	if v == "" || v == "(devel)" {
		return ""
	}
	return "@" + v
}

// osRelease reads this machine's /etc/os-release: the distribution the packages are from.
func osRelease() map[string]string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return map[string]string{}
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

func distroID(m map[string]string) string {
	if m["ID"] == "" {
		return "debian"
	}
	return m["ID"]
}
