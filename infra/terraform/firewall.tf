# The firewall's rules, kept free of providers so the tests evaluate this very file with
# the real tofu (infra/cloud: TestTerraform, TestTerraformFirewallRefuses). SSH and the k3s API are open only
# to the networks edgeline passes (by default the address the run comes from, and the
# agents' external IPs); nothing is open to everyone unless the lists say 0.0.0.0/0.

variable "ssh_source_cidrs" {
  description = "Networks allowed to SSH (TCP 22), in CIDR notation."
  type        = list(string)
  validation {
    condition     = length(var.ssh_source_cidrs) > 0 && alltrue([for c in var.ssh_source_cidrs : can(cidrhost(c, 0))])
    error_message = "ssh_source_cidrs must list at least one network in CIDR notation, like 203.0.113.7/32."
  }
}

variable "api_source_cidrs" {
  description = "Networks allowed to the k3s API (TCP 6443), in CIDR notation."
  type        = list(string)
  validation {
    condition     = length(var.api_source_cidrs) > 0 && alltrue([for c in var.api_source_cidrs : can(cidrhost(c, 0))])
    error_message = "api_source_cidrs must list at least one network in CIDR notation, like 203.0.113.7/32."
  }
}

locals {
  everyone = ["0.0.0.0/0", "::/0"]

  firewall_rules = [
    { port = "22", protocol = "tcp", description = "ssh", source_ips = var.ssh_source_cidrs },
    { port = "80", protocol = "tcp", description = "http (ACME HTTP-01, redirect)", source_ips = local.everyone },
    { port = "443", protocol = "tcp", description = "https", source_ips = local.everyone },
    { port = "6443", protocol = "tcp", description = "k3s API", source_ips = var.api_source_cidrs },
    { port = "51820-51821", protocol = "udp", description = "flannel wireguard-native", source_ips = local.everyone },
  ]
}
