# A local-only stand-in for infra/terraform used by the terraform source's tests: the
# same variables and outputs, with terraform_data in place of the hcloud resources,
# because no registry provider can be downloaded on the test machines. Everything
# around it — terraform-exec, the real tofu binary, state handling — is real. The
# firewall's variables and rules are infra/terraform/firewall.tf itself (a symbolic link).

variable "name" { type = string }
variable "server_type" { type = string }
variable "location" { type = string }
variable "image" { type = string }
variable "ssh_public_key" { type = string }
variable "ssh_key_fingerprint" { type = string }
variable "user_data" {
  type      = string
  sensitive = true
}
variable "zone" {
  type    = string
  default = ""
}
variable "hostnames" {
  type    = list(string)
  default = []
}
variable "dns_provider" {
  type    = string
  default = "hetzner"
}
variable "cloudflare_zone_id" {
  type    = string
  default = ""
}

resource "terraform_data" "server" {
  input = {
    name        = var.name
    server_type = var.server_type
    location    = var.location
    # Stand-in addresses from the documentation ranges (RFC 5737, RFC 3849).
    ipv4 = "203.0.113.10"
    ipv6 = "2001:db8::1"
  }
}

resource "terraform_data" "records" {
  for_each = var.dns_provider == "none" ? toset([]) : toset(var.hostnames)
  input    = { name = each.key, value = terraform_data.server.output.ipv4 }
}

output "server_id" {
  value = "tf-${terraform_data.server.id}"
}

output "ipv4" {
  value = terraform_data.server.output.ipv4
}

output "ipv6" {
  value = terraform_data.server.output.ipv6
}

output "dns_names" {
  value = sort([for r in terraform_data.records : r.output.name])
}

# The rules infra/terraform/main.tf gives the hcloud firewall, computed by its firewall.tf.
output "firewall_rules" {
  value = local.firewall_rules
}
