# The VPS for edgeline's k3s server, for teams whose cloud lives in Terraform.
# edgeline applies this module through terraform-exec (edgeline:cloud = terraform) with
# the variables below and reads the outputs; it works the same with OpenTofu.
# Provider credentials come from the environment: HCLOUD_TOKEN, and CLOUDFLARE_API_TOKEN
# when dns_provider is "cloudflare".

terraform {
  required_version = ">= 1.5"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.54"
    }
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.0"
    }
  }
}

locals {
  labels = { "managed-by" = "edgeline", "edgeline-stack" = var.name }
  # Record names relative to the zone; "@" is the apex.
  records = { for h in var.hostnames : h => (h == var.zone ? "@" : trimsuffix(h, ".${var.zone}")) }
}

# Hetzner refuses a second SSH key with the fingerprint of one already in the project
# (the user's own key, or one another stack made): such a key is used as it is, and only
# when there is none does the module create one, which it alone may delete.
data "hcloud_ssh_keys" "all" {}

locals {
  existing_ssh_keys = [
    for k in data.hcloud_ssh_keys.all.ssh_keys : k.id
    if k.fingerprint == var.ssh_key_fingerprint && lookup(k.labels, "edgeline-stack", "") != var.name
  ]
}

resource "hcloud_ssh_key" "admin" {
  count      = length(local.existing_ssh_keys) == 0 ? 1 : 0
  name       = var.name
  public_key = var.ssh_public_key
  labels     = local.labels
}

resource "hcloud_firewall" "vps" {
  name   = var.name
  labels = local.labels

  # firewall.tf: SSH and the k3s API only from the allowed networks.
  dynamic "rule" {
    for_each = local.firewall_rules
    content {
      direction   = "in"
      protocol    = rule.value.protocol
      port        = rule.value.port
      source_ips  = rule.value.source_ips
      description = rule.value.description
    }
  }
}

resource "hcloud_server" "vps" {
  name         = var.name
  server_type  = var.server_type
  image        = var.image
  location     = var.location
  ssh_keys     = concat(local.existing_ssh_keys, hcloud_ssh_key.admin[*].id)
  firewall_ids = [hcloud_firewall.vps.id]
  user_data    = var.user_data
  labels       = local.labels

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    # A new host key or SSH key only matters for a new server; do not rebuild for it.
    ignore_changes = [user_data, ssh_keys]
  }
}

# A records only: the cluster is IPv4-only (k3s dual-stack needs an IPv6 address on every
# node, which Pis behind NAT rarely have), so an AAAA record would send IPv6 clients
# where nothing listens. Records an older version made are destroyed by the next apply.
resource "hcloud_zone_rrset" "a" {
  for_each = var.dns_provider == "hetzner" ? local.records : {}
  zone     = var.zone
  name     = each.value
  type     = "A"
  ttl      = 300
  records  = [{ value = hcloud_server.vps.ipv4_address }]
  labels   = local.labels
}

resource "cloudflare_dns_record" "a" {
  for_each = var.dns_provider == "cloudflare" ? local.records : {}
  zone_id  = var.cloudflare_zone_id
  name     = each.key
  type     = "A"
  ttl      = 300
  content  = hcloud_server.vps.ipv4_address
  proxied  = false
}
