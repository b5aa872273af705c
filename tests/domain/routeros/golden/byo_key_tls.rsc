# WireWAN bootstrap script for RouterOS 7
# WAN "homelab", peer "office-mikrotik"
# Idempotent: every resource is found by its WAN-Overlay-Manager comment (the API user and
# services by name) and added or updated; pasting it twice changes nothing.
# SECRET: contains the WireGuard private key and the API password.
# Note: "This peer brought its own key: the script leaves private-key out, so RouterOS keeps (or, on a new interface, generates) its own. Its public key must equal the one stored in WireWAN (HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=); verify reports a mismatch."
{
# Step 0: API user and API service admit the tunnel range, management CIDRs and WireWAN
/user
:if ([:len [find where name="wirewan"]] = 0) do={
    add name=wirewan group=full address=10.0.0.0/24,172.20.0.0/16,192.0.2.50/32 password="pw"
} else={
    set [find where name="wirewan"] group=full address=10.0.0.0/24,172.20.0.0/16,192.0.2.50/32 password="pw"
}
/ip/service
:if ([:len [find where name="api"]] > 0) do={
    set [find where name="api"] address=10.0.0.0/24,172.20.0.0/16,192.0.2.50/32
}
:if ([:len [find where name="api-ssl"]] > 0) do={
    set [find where name="api-ssl"] address=10.0.0.0/24,172.20.0.0/16,192.0.2.50/32 disabled=no
}
# Step 1: WireGuard interface
/interface/wireguard
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:interface-1" or comment="WAN-Overlay-Manager:interface-1")]] = 0) do={
    add name=wg-wan-overlay listen-port=51820 mtu=1420 comment="WAN-Overlay-Manager:w7:interface-1"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:interface-1" or comment="WAN-Overlay-Manager:interface-1")] name=wg-wan-overlay listen-port=51820 mtu=1420 disabled=no comment="WAN-Overlay-Manager:w7:interface-1"
}
# Steps 2-3: WireGuard peer entries (one per visible remote peer, updated in place)
/interface/wireguard/peers
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002" or comment="WAN-Overlay-Manager:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002")]] = 0) do={
    add interface=wg-wan-overlay public-key="xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" allowed-address=10.0.0.2/32,10.20.0.0/16 endpoint-address="203.0.113.10" endpoint-port=51820 persistent-keepalive=25s comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002" or comment="WAN-Overlay-Manager:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002")] interface=wg-wan-overlay public-key="xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" allowed-address=10.0.0.2/32,10.20.0.0/16 endpoint-address="203.0.113.10" endpoint-port=51820 persistent-keepalive=25s disabled=no comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002"
}
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003" or comment="WAN-Overlay-Manager:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003")]] = 0) do={
    add interface=wg-wan-overlay public-key="TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=" allowed-address=10.0.0.3/32,192.168.50.0/24 endpoint-address="" endpoint-port=0 persistent-keepalive=25s comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003" or comment="WAN-Overlay-Manager:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003")] interface=wg-wan-overlay public-key="TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=" allowed-address=10.0.0.3/32,192.168.50.0/24 endpoint-address="" endpoint-port=0 persistent-keepalive=25s disabled=no comment="WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003"
}
# Step 4: tunnel address
/ip/address
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:address-1" or comment="WAN-Overlay-Manager:address-1")]] = 0) do={
    add address=10.0.0.1/24 interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:address-1"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:address-1" or comment="WAN-Overlay-Manager:address-1")] address=10.0.0.1/24 interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:address-1"
}
# Step 5: routes to remote prefixes at distance 10
/ip/route
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:route-10.20.0.0/16" or comment="WAN-Overlay-Manager:route-10.20.0.0/16")]] = 0) do={
    add dst-address=10.20.0.0/16 gateway=wg-wan-overlay distance=10 comment="WAN-Overlay-Manager:w7:route-10.20.0.0/16"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:route-10.20.0.0/16" or comment="WAN-Overlay-Manager:route-10.20.0.0/16")] dst-address=10.20.0.0/16 gateway=wg-wan-overlay distance=10 disabled=no comment="WAN-Overlay-Manager:w7:route-10.20.0.0/16"
}
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:route-192.168.50.0/24" or comment="WAN-Overlay-Manager:route-192.168.50.0/24")]] = 0) do={
    add dst-address=192.168.50.0/24 gateway=wg-wan-overlay distance=10 comment="WAN-Overlay-Manager:w7:route-192.168.50.0/24"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:route-192.168.50.0/24" or comment="WAN-Overlay-Manager:route-192.168.50.0/24")] dst-address=192.168.50.0/24 gateway=wg-wan-overlay distance=10 disabled=no comment="WAN-Overlay-Manager:w7:route-192.168.50.0/24"
}
# Step 6: demote unmanaged static routes that would shadow them (distance < 10 -> 11), each one inside them after a WireWAN route to its exact destination
/ip/route
:foreach r in=[find where dst-address=10.20.0.0/16 dynamic=no distance<10 !(comment~"^WAN-Overlay-Manager:")] do={ set $r distance=11 }
:foreach r in=[find where dst-address in 10.20.0.0/16 dst-address!=10.20.0.0/16 dynamic=no routing-table=main !(comment~"^WAN-Overlay-Manager:")] do={
    :local shadowDst [get $r dst-address]
    :local shadowTag "WAN-Overlay-Manager:w7:route-$shadowDst"
    :if ([:len [find where comment=$shadowTag]] = 0) do={ add dst-address=$shadowDst gateway=wg-wan-overlay distance=10 comment=$shadowTag }
    :if ([get $r distance] < 10) do={ set $r distance=11 }
}
:foreach r in=[find where dst-address=192.168.50.0/24 dynamic=no distance<10 !(comment~"^WAN-Overlay-Manager:")] do={ set $r distance=11 }
:foreach r in=[find where dst-address in 192.168.50.0/24 dst-address!=192.168.50.0/24 dynamic=no routing-table=main !(comment~"^WAN-Overlay-Manager:")] do={
    :local shadowDst [get $r dst-address]
    :local shadowTag "WAN-Overlay-Manager:w7:route-$shadowDst"
    :if ([:len [find where comment=$shadowTag]] = 0) do={ add dst-address=$shadowDst gateway=wg-wan-overlay distance=10 comment=$shadowTag }
    :if ([get $r distance] < 10) do={ set $r distance=11 }
}
# Step 7: firewall input accepts, before the first input drop rule
/ip/firewall/filter
:local inputDrop [find where chain=input action=drop dynamic=no]
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:allow-handshake-1" or comment="WAN-Overlay-Manager:allow-handshake-1")]] = 0) do={
    :if ([:len $inputDrop] > 0) do={
        add chain=input action=accept protocol=udp dst-port=51820 comment="WAN-Overlay-Manager:w7:allow-handshake-1" place-before=[:pick $inputDrop 0]
    } else={
        add chain=input action=accept protocol=udp dst-port=51820 comment="WAN-Overlay-Manager:w7:allow-handshake-1"
    }
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:allow-handshake-1" or comment="WAN-Overlay-Manager:allow-handshake-1")] chain=input action=accept protocol=udp dst-port=51820 disabled=no comment="WAN-Overlay-Manager:w7:allow-handshake-1"
}
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:allow-input-1" or comment="WAN-Overlay-Manager:allow-input-1")]] = 0) do={
    :if ([:len $inputDrop] > 0) do={
        add chain=input action=accept in-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:allow-input-1" place-before=[:pick $inputDrop 0]
    } else={
        add chain=input action=accept in-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:allow-input-1"
    }
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:allow-input-1" or comment="WAN-Overlay-Manager:allow-input-1")] chain=input action=accept in-interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:allow-input-1"
}
# Step 8: firewall forward accepts, before the first forward drop rule
/ip/firewall/filter
:local forwardDrop [find where chain=forward action=drop dynamic=no]
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:allow-forward-in-1" or comment="WAN-Overlay-Manager:allow-forward-in-1")]] = 0) do={
    :if ([:len $forwardDrop] > 0) do={
        add chain=forward action=accept in-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:allow-forward-in-1" place-before=[:pick $forwardDrop 0]
    } else={
        add chain=forward action=accept in-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:allow-forward-in-1"
    }
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:allow-forward-in-1" or comment="WAN-Overlay-Manager:allow-forward-in-1")] chain=forward action=accept in-interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:allow-forward-in-1"
}
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:allow-forward-out-1" or comment="WAN-Overlay-Manager:allow-forward-out-1")]] = 0) do={
    :if ([:len $forwardDrop] > 0) do={
        add chain=forward action=accept out-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:allow-forward-out-1" place-before=[:pick $forwardDrop 0]
    } else={
        add chain=forward action=accept out-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:allow-forward-out-1"
    }
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:allow-forward-out-1" or comment="WAN-Overlay-Manager:allow-forward-out-1")] chain=forward action=accept out-interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:allow-forward-out-1"
}
# Step 9: NAT: netmap for NAT'd subnets, no masquerade towards the overlay
/ip/firewall/nat
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:netmap-in-12" or comment="WAN-Overlay-Manager:netmap-in-12")]] = 0) do={
    add chain=dstnat action=netmap dst-address=172.16.0.0/24 to-addresses=192.168.1.0/24 in-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:netmap-in-12"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:netmap-in-12" or comment="WAN-Overlay-Manager:netmap-in-12")] chain=dstnat action=netmap dst-address=172.16.0.0/24 to-addresses=192.168.1.0/24 in-interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:netmap-in-12"
}
:local srcnatTop [find where chain=srcnat dynamic=no]
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:netmap-out-12" or comment="WAN-Overlay-Manager:netmap-out-12")]] = 0) do={
    :if ([:len $srcnatTop] > 0) do={
        add chain=srcnat action=netmap src-address=192.168.1.0/24 to-addresses=172.16.0.0/24 out-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:netmap-out-12" place-before=[:pick $srcnatTop 0]
    } else={
        add chain=srcnat action=netmap src-address=192.168.1.0/24 to-addresses=172.16.0.0/24 out-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:netmap-out-12"
    }
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:netmap-out-12" or comment="WAN-Overlay-Manager:netmap-out-12")] chain=srcnat action=netmap src-address=192.168.1.0/24 to-addresses=172.16.0.0/24 out-interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:netmap-out-12"
}
:local srcnatMasq [find where chain=srcnat action=masquerade dynamic=no]
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:no-masq-1" or comment="WAN-Overlay-Manager:no-masq-1")]] = 0) do={
    :if ([:len $srcnatMasq] > 0) do={
        add chain=srcnat action=accept out-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:no-masq-1" place-before=[:pick $srcnatMasq 0]
    } else={
        add chain=srcnat action=accept out-interface=wg-wan-overlay comment="WAN-Overlay-Manager:w7:no-masq-1"
    }
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:no-masq-1" or comment="WAN-Overlay-Manager:no-masq-1")] chain=srcnat action=accept out-interface=wg-wan-overlay disabled=no comment="WAN-Overlay-Manager:w7:no-masq-1"
}
# Step 10: NAT: published services
/ip/firewall/nat
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:service-dnat-21" or comment="WAN-Overlay-Manager:service-dnat-21")]] = 0) do={
    add chain=dstnat action=dst-nat protocol=tcp dst-address=10.0.5.1 dst-port=80 in-interface=wg-wan-overlay to-addresses=192.168.10.5 to-ports=8080 comment="WAN-Overlay-Manager:w7:service-dnat-21"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:service-dnat-21" or comment="WAN-Overlay-Manager:service-dnat-21")] chain=dstnat action=dst-nat protocol=tcp dst-address=10.0.5.1 dst-port=80 in-interface=wg-wan-overlay to-addresses=192.168.10.5 to-ports=8080 disabled=no comment="WAN-Overlay-Manager:w7:service-dnat-21"
}
:if ([:len [find where (comment="WAN-Overlay-Manager:w7:service-snat-21" or comment="WAN-Overlay-Manager:service-snat-21")]] = 0) do={
    add chain=srcnat action=masquerade protocol=tcp dst-address=192.168.10.5 dst-port=8080 comment="WAN-Overlay-Manager:w7:service-snat-21"
} else={
    set [find where (comment="WAN-Overlay-Manager:w7:service-snat-21" or comment="WAN-Overlay-Manager:service-snat-21")] chain=srcnat action=masquerade protocol=tcp dst-address=192.168.10.5 dst-port=8080 disabled=no comment="WAN-Overlay-Manager:w7:service-snat-21"
}
:log info "WireWAN bootstrap applied for peer office-mikrotik"
:put "WireWAN bootstrap applied for peer office-mikrotik"
}
