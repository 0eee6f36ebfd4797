//! The benchmark's events, as the compact JSON bytes the Runtime API would send.

use serde_json::{Value, json};

/// An API Gateway HTTP API (payload 2.0) request, about 1 KB.
pub fn api_gateway_1k() -> Vec<u8> {
    let pretty = include_str!("../events/api-gateway-1k.json");
    let event: Value = serde_json::from_str(pretty).expect("api-gateway-1k.json is JSON");
    serde_json::to_vec(&event).expect("a Value serializes")
}

/// An EventBridge event carrying a batch of orders, as close to `target` bytes as
/// whole orders allow (EventBridge's own limit is 256 KB). Every kind of JSON value
/// occurs, nested up to seven levels deep, with small strings as in real payloads (at
/// 256 KB: 403 orders, about 17,700 values and 15,200 keys): the cost measured is the
/// conversion of many values, not the copy of one string.
pub fn order_batch(target: usize) -> Vec<u8> {
    let mut random = Lcg(0x5eed);
    let mut orders = Vec::new();
    let mut event = envelope(Vec::new());
    let mut size = serde_json::to_vec(&event)
        .expect("a Value serializes")
        .len();
    while size < target {
        let order = order(orders.len(), &mut random);
        size += serde_json::to_vec(&order)
            .expect("a Value serializes")
            .len()
            + 1;
        orders.push(order);
    }
    event["detail"]["orders"] = Value::Array(orders);
    serde_json::to_vec(&event).expect("a Value serializes")
}

fn envelope(orders: Vec<Value>) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Order Batch",
        "source": "com.example.orders",
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": { "batchId": 73519, "partial": false, "orders": orders }
    })
}

fn order(n: usize, random: &mut Lcg) -> Value {
    const CITIES: [&str; 5] = ["Lyon", "Porto", "Gdańsk", "Leeds", "Bilbao"];
    const STATUSES: [&str; 4] = ["pending", "paid", "shipped", "delivered"];
    const TAGS: [&str; 6] = ["gift", "fragile", "bulk", "eco", "promo", "express"];
    let customer = random.below(90_000) + 10_000;
    let item_count = 1 + random.below(4);
    let mut net = 0.0;
    let items: Vec<Value> = (0..item_count)
        .map(|i| {
            let sku = random.below(5_000);
            let quantity = 1 + random.below(5);
            // Cents ending in 9 keep prices fractional, as prices usually are.
            let unit_price = (random.below(20_000) * 10 + 9) as f64 / 100.0;
            net += unit_price * quantity as f64;
            let tags: Vec<&str> = (0..random.below(3))
                .map(|_| TAGS[random.below(TAGS.len() as u64) as usize])
                .collect();
            json!({
                "line": i + 1,
                "sku": format!("SKU-{sku:05}"),
                "name": format!("Widget {sku}"),
                "quantity": quantity,
                "unitPrice": unit_price,
                "discount": if random.below(4) == 0 { json!(0.15) } else { Value::Null },
                "tags": tags,
            })
        })
        .collect();
    let net = (net * 100.0).round() / 100.0;
    json!({
        "orderId": format!("ord-{n:06}"),
        "createdAt": format!("2024-05-01T11:{:02}:{:02}Z", n / 60 % 60, n % 60),
        "status": STATUSES[random.below(4) as usize],
        "customer": {
            "id": format!("cus-{customer}"),
            "name": format!("Customer {customer}"),
            "email": format!("c{customer}@example.com"),
            "vip": random.below(10) == 0,
            "address": {
                "street": format!("{} Market Street", 1 + random.below(200)),
                "city": CITIES[random.below(CITIES.len() as u64) as usize],
                "postcode": format!("{:05}", random.below(100_000)),
                "country": "EU",
            },
        },
        "items": items,
        "totals": { "net": net, "tax": (net * 20.0).round() / 100.0, "currency": "EUR" },
        "notes": Value::Null,
        "attributes": {},
    })
}

/// A tiny deterministic generator, so every run sends the same bytes.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}
