# The variables edgeline sets (see infra/cloud/terraform.go); the firewall's source
# networks are declared in firewall.tf.

variable "name" {
  description = "Name of the server, its firewall and its SSH key."
  type        = string
}

variable "server_type" {
  description = "Hetzner server type, e.g. cx22 (x86) or cax11 (Arm)."
  type        = string
}

variable "location" {
  description = "Hetzner location, e.g. nbg1, fsn1, hel1."
  type        = string
}

variable "image" {
  description = "OS image, e.g. ubuntu-24.04."
  type        = string
}

variable "ssh_public_key" {
  description = "Public key installed for root."
  type        = string
}

variable "ssh_key_fingerprint" {
  description = "MD5 fingerprint of ssh_public_key as Hetzner reports it (aa:bb:...); a project key with it is reused."
  type        = string
}

variable "user_data" {
  description = "cloud-init configuration; installs the SSH host key edgeline pins."
  type        = string
  sensitive   = true
}

variable "zone" {
  description = "DNS zone of the hostnames."
  type        = string
  default     = ""
}

variable "hostnames" {
  description = "Names that get A records pointing at the server."
  type        = list(string)
  default     = []
}

variable "dns_provider" {
  description = "Where the zone lives: hetzner, cloudflare or none."
  type        = string
  default     = "hetzner"
  validation {
    condition     = contains(["hetzner", "cloudflare", "none"], var.dns_provider)
    error_message = "dns_provider must be hetzner, cloudflare or none."
  }
}

variable "cloudflare_zone_id" {
  description = "Cloudflare zone ID when dns_provider is cloudflare."
  type        = string
  default     = ""
}
