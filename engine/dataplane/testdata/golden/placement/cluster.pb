seesaw_vip { fqdn: "vip." ipv4: "192.0.2.4/24" ipv6: "2001:db8:0:1::4/64" status: PRODUCTION }
node { fqdn: "lb1." ipv4: "192.0.2.2/24" ipv6: "2001:db8:0:1::2/64" status: PRODUCTION }
node { fqdn: "lb2." ipv4: "192.0.2.3/24" ipv6: "2001:db8:0:1::3/64" status: PRODUCTION }
dedicated_vip_subnet: "203.0.113.128/25"
vlan { vlan_id: 100 host { fqdn: "lb-vlan100." ipv4: "10.100.0.2/24" ipv6: "2001:db8:100::2/64" } }
vserver {
  name: "dedicated@test"
  entry_address { fqdn: "ded." ipv4: "203.0.113.130/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "vlan@test"
  entry_address { fqdn: "vl." ipv4: "10.100.0.50/32" ipv6: "2001:db8:100::50/128" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 mode: NAT }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "elsewhere@test"
  entry_address { fqdn: "else." ipv4: "100.115.222.143/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 443 }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
vserver {
  name: "anycast@test"
  entry_address { fqdn: "any." ipv4: "192.168.255.10/32" status: PRODUCTION }
  rp: "ops@test"
  vserver_entry { protocol: TCP port: 80 healthcheck { type: TCP } }
  vserver_entry { protocol: TCP port: 81 healthcheck { type: TCP } }
  backend { host { fqdn: "b1." ipv4: "198.51.100.11/24" ipv6: "2001:db8:0:2::11/64" status: PRODUCTION } weight: 1 }
  backend { host { fqdn: "b2." ipv4: "198.51.100.12/24" ipv6: "2001:db8:0:2::12/64" status: PRODUCTION } weight: 3 }
}
