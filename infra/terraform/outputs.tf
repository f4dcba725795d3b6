# The outputs edgeline reads; every cloud source reports the same.

output "server_id" {
  value = tostring(hcloud_server.vps.id)
}

output "ipv4" {
  value = hcloud_server.vps.ipv4_address
}

output "ipv6" {
  value = hcloud_server.vps.ipv6_address
}

output "dns_names" {
  value = var.dns_provider == "none" ? [] : sort(var.hostnames)
}
