# cluster.pb imported from keepalived (test) by "seesaw config import keepalived".
# Both nodes carry this same file. Check it with: seesaw config check

# The cluster VIP: held by the master, the gateway of NAT backends.
seesaw_vip {
  fqdn: "web-vip"
  ipv4: "10.0.0.2/24"
  status: PRODUCTION
}

# The pair. Seesaw gives VRRP priority 255 to the lower IPv4 address.
node {
  fqdn: "lb1"
  ipv4: "10.0.0.4/24"
  status: PRODUCTION
}
node {
  fqdn: "lb2"
  ipv4: "10.0.0.3/24"
  status: PRODUCTION
}

# from virtual_server at testdata/sample/conf.d/10-web.conf:2
# from virtual_server at testdata/sample/conf.d/10-web.conf:37
vserver {
  name: "10.0.0.10@web"
  entry_address {
    fqdn: "10.0.0.10"
    ipv4: "10.0.0.10/32"
    status: PRODUCTION
  }
  rp: "web-oncall@example.com"
  vserver_entry {
    protocol: TCP
    port: 80
    scheduler: WLC
    mode: DSR
    persistence: 360
    quiescent: true
    healthcheck {
      type: HTTP
      interval: 5
      timeout: 2
      send: "/healthz"
      code: 204
      retries: 3
    }
  }
  vserver_entry {
    protocol: TCP
    port: 443
    scheduler: WLC
    mode: DSR
    persistence: 600
    quiescent: true
    healthcheck {
      type: HTTPS
      interval: 5
      timeout: 3
      send: "/"
      tls_verify: false
      retries: 1
    }
  }
  backend {
    host {
      fqdn: "10.0.1.11"
      ipv4: "10.0.1.11/32"
      status: PRODUCTION
    }
    weight: 3
  }
  backend {
    host {
      fqdn: "10.0.1.12"
      ipv4: "10.0.1.12/32"
      status: PRODUCTION
    }
    weight: 2
  }
}

# from virtual_server at testdata/sample/conf.d/20-dns.conf:3
vserver {
  name: "10.0.0.53:53/udp@web"
  entry_address {
    fqdn: "10.0.0.53"
    ipv4: "10.0.0.53/32"
    status: PRODUCTION
  }
  rp: "web-oncall@example.com"
  vserver_entry {
    protocol: UDP
    port: 53
    scheduler: SH
    mode: NAT
    healthcheck {
      type: DNS
      interval: 10
      timeout: 5
      send: "www.example.com"
      method: "A"
      retries: 3
    }
    one_packet: true
    source_nat: false
  }
  backend {
    host {
      fqdn: "10.0.2.1"
      ipv4: "10.0.2.1/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "10.0.2.2"
      ipv4: "10.0.2.2/32"
      status: PRODUCTION
    }
    weight: 1
  }
}

# from virtual_server at testdata/sample/conf.d/20-dns.conf:23
vserver {
  name: "10.0.0.53:53/tcp@web"
  entry_address {
    fqdn: "10.0.0.53"
    ipv4: "10.0.0.53/32"
    status: PRODUCTION
  }
  rp: "web-oncall@example.com"
  vserver_entry {
    protocol: TCP
    port: 53
    scheduler: WLC
    mode: NAT
    healthcheck {
      type: TCP
      interval: 60
      timeout: 5
      retries: 1
    }
    source_nat: false
  }
  backend {
    host {
      fqdn: "10.0.2.1"
      ipv4: "10.0.2.1/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "10.0.2.2"
      ipv4: "10.0.2.2/32"
      status: PRODUCTION
    }
    weight: 5
  }
}

# from virtual_server at testdata/sample/conf.d/30-misc.conf:2
vserver {
  name: "10.0.0.20@web"
  entry_address {
    fqdn: "10.0.0.20"
    ipv4: "10.0.0.20/32"
    status: PRODUCTION
  }
  rp: "web-oncall@example.com"
  vserver_entry {
    protocol: UDP
    port: 8080
    scheduler: MH
    mode: TUN
    healthcheck {
      type: ICMP_PING
      interval: 60
      timeout: 5
      retries: 1
    }
  }
  backend {
    host {
      fqdn: "10.0.3.1"
      ipv4: "10.0.3.1/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "10.0.3.2"
      ipv4: "10.0.3.2/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "10.0.3.3"
      ipv4: "10.0.3.3/32"
      status: PRODUCTION
    }
    weight: 1
  }
}

# from virtual_server at testdata/sample/conf.d/30-misc.conf:27
vserver {
  name: "fwmark7@web"
  entry_address {
    fqdn: "10.0.0.99"
    ipv4: "10.0.0.99/32"
    status: PRODUCTION
  }
  rp: "web-oncall@example.com"
  use_fwm: true
  vserver_entry {
    protocol: TCP
    port: 80
    scheduler: RR
    mode: NAT
    source_nat: false
  }
  vserver_entry {
    protocol: TCP
    port: 443
    scheduler: RR
    mode: NAT
    source_nat: false
  }
  backend {
    host {
      fqdn: "10.0.4.1"
      ipv4: "10.0.4.1/32"
      status: PRODUCTION
    }
    weight: 1
  }
}

# Not imported (see "seesaw config import keepalived" output):
#   testdata/sample/conf.d/10-web.conf:16: url {...}: Seesaw checks one URL per check; the first url block was used
#   testdata/sample/conf.d/10-web.conf:33: notify_down /usr/local/bin/page web2: Seesaw runs no user scripts
#   testdata/sample/conf.d/10-web.conf:42: persistence_granularity 255.255.255.0: Seesaw's persistence is per client address
#   testdata/sample/conf.d/10-web.conf:50: status_code 200-299: Seesaw expects one status code; ranges and lists were not kept (200 is expected)
#   testdata/sample/conf.d/10-web.conf:51: digest 9b3a0c85a887a256d6939da88aabd8cd: Seesaw's HTTP check matches a body prefix (receive), not a digest or regex
#   testdata/sample/conf.d/10-web.conf:53: connect_timeout 2.5: Seesaw's check times are whole seconds; 3s was used
#   testdata/sample/conf.d/10-web.conf:61: status_code 200-299: Seesaw expects one status code; ranges and lists were not kept (200 is expected)
#   testdata/sample/conf.d/10-web.conf:62: digest 9b3a0c85a887a256d6939da88aabd8cd: Seesaw's HTTP check matches a body prefix (receive), not a digest or regex
#   testdata/sample/conf.d/10-web.conf:64: connect_timeout 2.5: Seesaw's check times are whole seconds; 3s was used
#   testdata/sample/conf.d/20-dns.conf:5: lb_algo sh: Seesaw also sets sh-fallback (another destination when the hashed one is unavailable)
#   testdata/sample/conf.d/20-dns.conf:5: lb_algo sh: Seesaw also sets sh-port (the source port is hashed too)
#   testdata/sample/conf.d/20-dns.conf:25: lb_algo lblc: no such Seesaw scheduler (rr wrr lc wlc sh mh); wlc was used
#   testdata/sample/conf.d/20-dns.conf:34: checks of real_server 10.0.2.2: differ from real_server 10.0.2.1's at testdata/sample/conf.d/20-dns.conf:27; Seesaw checks every backend of an entry alike, and used those
#   testdata/sample/conf.d/30-misc.conf:2: virtual_server 10.0.0.20 8080 {...}: no protocol: keepalived (and IPVS) take UDP, so UDP was imported; add "protocol TCP" if TCP was meant
#   testdata/sample/conf.d/30-misc.conf:3: lvs_sched mh: Seesaw also sets mh-port (the source port is hashed too)
#   testdata/sample/conf.d/30-misc.conf:6: quorum 2: quorum is a weight sum; Seesaw uses server_low_watermark and server_high_watermark (fractions of healthy backends)
#   testdata/sample/conf.d/30-misc.conf:7: sorry_server 10.0.9.9 8080: Seesaw has no sorry server; its watermarks take an entry down instead
#   testdata/sample/conf.d/30-misc.conf:11: MISC_CHECK {...}: a check that runs a script; Seesaw runs no user scripts (use a TCP, HTTP or DNS check)
#   testdata/sample/conf.d/30-misc.conf:20: checks of real_server 10.0.3.3: differ from real_server 10.0.3.1's at testdata/sample/conf.d/30-misc.conf:8; Seesaw checks every backend of an entry alike, and used those
#   testdata/sample/conf.d/30-misc.conf:22: payload 0102: Seesaw's UDP check sends no chosen payload here; set send and receive by hand
#   testdata/sample/conf.d/30-misc.conf:33: virtual_server_group VSG1 {...}: write one virtual_server per address and port (or a Seesaw vserver with several entries)
#   testdata/sample/conf.d/30-misc.conf:37: virtual_server group VSG1 {...}: a group virtual server's addresses and ports are in its virtual_server_group; write one virtual_server per address and port
#   testdata/sample/keepalived.conf:6: notification_email {...}: Seesaw sends no mail; alert from its metrics instead (the first address is the vservers' rp)
#   testdata/sample/keepalived.conf:10: smtp_server 127.0.0.1: Seesaw sends no mail; alert from its metrics instead
#   testdata/sample/keepalived.conf:11: lvs_sync_daemon eth1 VI_WEB: Seesaw runs IPVS connection sync itself on both nodes (sync id from the VRID)
#   testdata/sample/keepalived.conf:18: vrrp_sync_group G1 {...}: Seesaw runs one VRRP router per pair, so its VIPs always move together
#   testdata/sample/keepalived.conf:29: priority 200: Seesaw prefers the node with the lower IPv4 address as master (10.0.0.3, priority 255); keepalived preferred 10.0.0.4
#   testdata/sample/keepalived.conf:38: nopreempt: not mapped: when a node that comes back takes mastership again is the engine's to decide (README: The pair)
#   testdata/sample/keepalived.conf:39: authentication {...}: VRRPv3 has no authentication; Seesaw's peer sync is authenticated by mutual TLS instead
#   testdata/sample/keepalived.conf:50: notify_master /etc/keepalived/notify.sh master: Seesaw runs no user scripts
