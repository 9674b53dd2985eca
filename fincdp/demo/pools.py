"""Static vocabularies for the demo generator: names with pinyin, company words, cities, titles,
WeCom departments, web pages and user agents, and the region codes in python-stdnum's data.

Names come from Faker's zh_CN providers (surnames with their frequencies, given names by gender);
the pinyin is written here because Faker has none for its characters and emails and WeCom userids
are spelt from it. Everything is a plain list so the generator can draw with numpy.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import stdnum.cn


def _pinyin_table(text: str) -> dict[str, str]:
    """'王wang 李li' -> {'王': 'wang', '李': 'li'}."""
    out: dict[str, str] = {}
    for item in text.split():
        out[item[0]] = item[1:]
    return out


# Pinyin of every character used in person names (surnames, given names, typo substitutes).
PINYIN = _pinyin_table("""
王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 吴wu 赵zhao 周zhou 徐xu 孙sun 马ma 朱zhu 胡hu
林lin 郭guo 何he 高gao 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu 邓deng 冯feng 韩han 曹cao
曾zeng 彭peng 萧xiao 蔡cai 潘pan 田tian 董dong 袁yuan 余yu 叶ye 蒋jiang 杜du 苏su 魏wei 程cheng
吕lv 丁ding 沈shen 任ren 姚yao 卢lu 傅fu 钟zhong 姜jiang 崔cui 谭tan 廖liao 范fan 汪wang 陆lu
金jin 石shi 戴dai 贾jia 韦wei 夏xia 邱qiu 方fang 侯hou 邹zou 熊xiong 孟meng 秦qin 白bai 江jiang
阎yan 薛xue 尹yin 段duan 雷lei 鞠ju 黎li 史shi 龙long 陶tao 贺he 顾gu 毛mao 郝hao 龚gong 邵shao
万wan 钱qian 严yan 赖lai 覃qin 洪hong 武wu 莫mo 孔kong 汤tang 向xiang 常chang 温wen 康kang 施shi
文wen 牛niu 樊fan 葛ge 邢xing 安an 齐qi 易yi 乔qiao 伍wu 庞pang 颜yan 倪ni 庄zhuang 欧ou 阳yang
司si 徒tu 上shang 官guan
想xiang 帆fan 敏min 丹dan 建jian 杰jie 磊lei 柳liu 燕yan 小xiao 雪xue 娜na 瑜yu 博bo 珍zhen
帅shuai 超chao 瑞rui 欢huan 凤feng 浩hao 楠nan 成cheng 香xiang 芳fang 波bo 海hai 洋yang 晶jing
洁jie 利li 荣rong 华hua 俊jun 健jian 宇yu 佳jia 东dong 兵bing 玉yu 琴qin 云yun 莹ying 平ping
静jing 桂gui 红hong 凯kai 峰feng 坤kun 斌bin 晨chen 亮liang 旭xu 伟wei 春chun 刚gang 彬bin
军jun 志zhi 鹏peng 勇yong 畅chang 霞xia 鑫xin 国guo 涛tao 丽li 玲ling 梅mei 颖ying 萍ping 飞fei
莉li 慧hui 冬dong 明ming 兰lan 辉hui 婷ting 欣xin 秀xiu 芝zhi 强qiang 英ying 花hua 琳lin 娟juan
淑shu 宁ning 璐lu 艳yan 倩qian 岩yan
玮wei 炜wei 俐li 婧jing 铭ming 君jun 桦hua 垒lei 钢gang 锋feng 滔tao 鹃juan 铃ling 虹hong 宏hong
闵min 侠xia 惠hui 瑛ying 苹ping 蔷qiang 晖hui 朋peng 菲fei 雨yu 禹yu 潮chao 永yong 扬yang 昊hao
恺kai 骏jun 辰chen 睿rui 雯wen 玫mei 亭ting 茜qian 芹qin 芸yun 子zi 梓zi 涵han 轩xuan 思si 怡yi
嘉jia 晓xiao 泽ze 一yi 诗shi 雅ya 宸chen 皓hao 然ran 可ke 心xin 语yu 逸yi 天tian 晗han 家jia
豪hao 鸿hong 卫wei 毅yi 琪qi 薇wei 蕾lei 露lu 敬jing 振zhen 立li 新xin 德de 庆qing 晋jin 培pei
维wei 学xue 承cheng 远yuan 凡fan 瑶yao 悦yue 彤tong 妍yan 章zhang 陳chen 張zhang 劉liu 楊yang
黃huang 趙zhao 吳wu 孫sun 鄭zheng 偉wei 麗li 軍jun 華hua 傑jie 濤tao 輝hui 鵬peng 飛fei 紅hong
""")

# Extra given-name characters (beyond Faker's) to build two-character names from.
GIVEN_CHARS_MALE = list("伟强磊洋勇军杰涛超明刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林佳阳建峰晨瑞东博彬坤岩文"
                        "志国海春轩泽皓宸逸天豪鸿卫毅振立新德庆晋培维学承远凡子梓一然家晓思嘉铭睿昊骏辰")
GIVEN_CHARS_FEMALE = list("芳娜敏静丽艳娟霞燕玲丹萍红英梅莉婷晶颖雪慧倩琴云洁莹琳欣璐瑜玉秀淑桂兰凤香"
                          "子梓涵怡诗雅可心语晗琪薇蕾露瑶悦彤妍思晓嘉雯茜芸婧")



@functools.cache
def _faker_pools() -> dict[str, list]:
    """Faker's zh_CN vocabularies, loaded on first use (importing Faker takes most of a second).

    SURNAMES: surnames with frequencies (per cent) that we have pinyin for, plus compound ones;
    GIVEN_MALE / GIVEN_FEMALE: given names by gender; FAKER_BRANDS: company prefixes without 公司.
    """
    from faker.providers.company.zh_CN import Provider as company
    from faker.providers.person.zh_CN import Provider as person

    return {
        "SURNAMES": [(s, w) for s, w in person.last_names.items() if len(s) == 1 and s in PINYIN]
        + [("欧阳", 0.05), ("司徒", 0.02), ("上官", 0.02)],
        "GIVEN_MALE": [g for g in person.first_names_male if all(c in PINYIN for c in g)],
        "GIVEN_FEMALE": [g for g in person.first_names_female if all(c in PINYIN for c in g)],
        "FAKER_BRANDS": sorted({p.replace("国际公司", "").replace("公司", "") for p in company.company_prefixes}),
    }


def __getattr__(name: str):
    if name in ("SURNAMES", "GIVEN_MALE", "GIVEN_FEMALE", "FAKER_BRANDS"):
        return _faker_pools()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Homophones and look-alikes: the typos people make typing a name.
TYPOS: dict[str, str] = dict(zip(
    "伟丽静明军华燕磊刚峰杰涛斌芳娟玲红敏霞慧英萍强辉鹏飞宇超勇杨洋浩凯俊晨瑞文莉婷颖倩琴云张陈刘黄赵吴孙郑",
    "玮俐婧铭君桦艳垒钢锋洁滔彬方鹃铃虹闵侠惠瑛苹蔷晖朋菲雨潮永扬阳昊恺骏辰睿雯丽亭莹茜芹芸章程柳王照武荪正",
))
# Traditional forms seen in data typed in Hong Kong or Taiwan.
TRADITIONAL: dict[str, str] = dict(zip("陈张刘杨黄赵吴孙郑伟丽军华杰涛辉鹏飞红", "陳張劉楊黃趙吳孫鄭偉麗軍華傑濤輝鵬飛紅"))

# Names with the interpunct (Uyghur and other transliterated names): (first part, pinyin, gender).
DOT_FIRST: list[tuple[str, str, str]] = [
    ("艾力", "aili", "M"), ("买买提", "maimaiti", "M"), ("阿不都", "abudu", "M"), ("艾尔肯", "aierken", "M"),
    ("帕尔哈提", "paerhati", "M"), ("阿迪力", "adili", "M"), ("努尔兰", "nuerlan", "M"), ("吐尔逊", "tuerxun", "M"),
    ("阿依古丽", "ayiguli", "F"), ("古丽米拉", "gulimila", "F"), ("迪丽娜尔", "dilinaer", "F"),
    ("热依拉", "reyila", "F"), ("米热古丽", "mireguli", "F"), ("帕提古丽", "patiguli", "F"),
]
DOT_LAST: list[tuple[str, str]] = [
    ("买买提", "maimaiti"), ("吐尔逊", "tuerxun"), ("热合曼", "reheman"), ("艾则孜", "aizezi"),
    ("库尔班", "kuerban"), ("托合提", "tuoheti"), ("吾斯曼", "wusiman"), ("阿不都拉", "abudula"),
    ("哈力克", "halike"), ("艾合买提", "aihemaiti"), ("玉素甫", "yusufu"), ("依明", "yiming"),
]
DOT_VARIANTS = ["·", "·", "・", "•", ".", "．", ""]  # first is canonical (U+00B7)

ENGLISH_NAMES = ["David", "Kevin", "Jason", "Eric", "Tony", "Frank", "Leo", "Jack", "Peter", "Allen",
                 "Linda", "Grace", "Cindy", "Amy", "Vivian", "Helen", "Jenny", "Sophia", "Iris", "Lily"]

FREE_MAIL = [("qq.com", 40), ("163.com", 25), ("126.com", 10), ("foxmail.com", 8), ("sina.com", 6),
             ("139.com", 4), ("hotmail.com", 3), ("gmail.com", 2), ("outlook.com", 2)]

MOBILE_PREFIXES = [("138", 8), ("139", 8), ("137", 6), ("136", 6), ("135", 6), ("134", 3), ("150", 4), ("151", 4),
                   ("152", 3), ("158", 4), ("159", 4), ("157", 2), ("182", 3), ("183", 2), ("187", 3), ("188", 3),
                   ("130", 4), ("131", 4), ("132", 3), ("155", 3), ("156", 3), ("185", 3), ("186", 4), ("166", 1),
                   ("133", 3), ("153", 2), ("180", 3), ("181", 2), ("189", 4), ("177", 2), ("199", 2), ("191", 1),
                   ("198", 1), ("195", 1)]
# 1349 is the satellite range, not a mobile: the generator skips it.

# ---------------------------------------------------------------- companies
BRAND_CHARS = _pinyin_table("""
华hua 信xin 鑫xin 博bo 腾teng 飞fei 远yuan 航hang 恒heng 泰tai 瑞rui 达da 嘉jia 禾he 盛sheng 通tong
宏hong 金jin 安an 中zhong 天tian 海hai 新xin 利li 源yuan 诚cheng 德de 康kang 明ming 辉hui 联lian
创chuang 汇hui 丰feng 兴xing 隆long 昌chang 永yong 和he 正zheng 方fang 宇yu 凯kai 润run 益yi 晟sheng
弘hong 启qi 峰feng 元yuan 锦jin 荣rong 佳jia 百bai 万wan 东dong 南nan 星xing 光guang 誉yu 鼎ding
卓zhuo 越yue 致zhi 合he 众zhong 银yin 浩hao 开kai 翔xiang 祥xiang 立li 坤kun 宁ning 港gang 盈ying
富fu 泓hong 昇sheng 策ce 楚chu 湘xiang 蓝lan 云yun 拓tuo 展zhan 沃wo 聚ju 邦bang 友you 同tong 捷jie
迅xun 瀚han 朗lang 耀yao 铭ming 骏jun 智zhi 睿rui 泽ze 航hang 烨ye 琪qi 晶jing 璟jing 赛sai 捷jie
""")


@dataclass(frozen=True)
class Industry:
    name: str            # GB/T 4754 section
    weight: float
    words: tuple[str, ...]    # what the company name says it does
    domain_words: tuple[str, ...]


INDUSTRIES = [
    Industry("制造业", 30, ("电子", "机械", "精密制造", "新材料", "汽车零部件", "化工", "食品", "纺织", "医疗器械",
                          "电气", "包装", "生物医药"), ("tech", "group", "mfg", "")),
    Industry("批发和零售业", 18, ("贸易", "商贸", "供应链管理", "进出口", "实业"), ("trade", "group", "")),
    Industry("信息传输、软件和信息技术服务业", 14, ("科技", "信息技术", "软件", "网络科技", "数据科技", "智能科技"),
             ("tech", "soft", "data", "")),
    Industry("交通运输、仓储和邮政业", 10, ("物流", "运输", "航运", "仓储", "供应链"), ("logistics", "wl", "")),
    Industry("建筑业", 8, ("建设工程", "建筑工程", "装饰工程", "市政工程"), ("jianshe", "group", "")),
    Industry("租赁和商务服务业", 5, ("企业管理咨询", "商务咨询", "人力资源", "会展服务"), ("consulting", "")),
    Industry("房地产业", 4, ("置业", "房地产开发", "物业管理"), ("realty", "group", "")),
    Industry("金融业", 4, ("投资", "资产管理", "融资租赁", "商业保理"), ("capital", "fin", "")),
    Industry("电力、热力、燃气及水生产和供应业", 4, ("新能源", "能源", "电力", "燃气"), ("energy", "power", "")),
    Industry("文化、体育和娱乐业", 2, ("文化传媒", "传媒", "影视"), ("media", "")),
    Industry("农、林、牧、渔业", 1, ("农业", "生态农业", "农牧"), ("agri", "")),
]

# Legal-name forms; {b} brand, {w} business word, {c} city without 市. Weights in per cent.
NAME_FORMS = [("{b}{w}有限公司", 44), ("{b}{w}股份有限公司", 14), ("{c}{b}{w}有限公司", 20),
              ("{b}{w}（{c}）有限公司", 14), ("{b}{w}集团有限公司", 8)]
LEGAL_SUFFIXES = ("集团有限公司", "股份有限公司", "有限责任公司", "有限公司")

ROADS = list("中山 人民 解放 建设 和平 长江 黄河 淮海 南京 北京 延安 世纪 科技 创新 金融 东方 滨江 湖滨 迎宾 "
             "光明 文化 新华 青年 朝阳 复兴 凤凰 天府 珠江 深南 高新".split())
BUILDING_WORDS = ["大厦", "中心", "广场", "国际中心", "金融中心", "科技园", "产业园", "商务楼"]


@dataclass(frozen=True)
class City:
    province: str
    name: str           # with 市
    code: str           # four-digit prefecture code
    area_code: str      # trunk prefix included: 021
    local_digits: int   # length of a fixed-line number without the area code
    region: str         # the firm's sales region
    weight: float


CITIES = [
    City("北京市", "北京市", "1101", "010", 8, "华北", 12), City("上海市", "上海市", "3101", "021", 8, "华东", 14),
    City("天津市", "天津市", "1201", "022", 8, "华北", 3), City("重庆市", "重庆市", "5001", "023", 8, "西南", 3),
    City("广东省", "广州市", "4401", "020", 8, "华南", 7), City("广东省", "深圳市", "4403", "0755", 8, "华南", 9),
    City("广东省", "佛山市", "4406", "0757", 8, "华南", 2), City("浙江省", "杭州市", "3301", "0571", 8, "华东", 6),
    City("浙江省", "宁波市", "3302", "0574", 8, "华东", 3), City("江苏省", "南京市", "3201", "025", 8, "华东", 4),
    City("江苏省", "苏州市", "3205", "0512", 8, "华东", 5), City("江苏省", "无锡市", "3202", "0510", 8, "华东", 2),
    City("四川省", "成都市", "5101", "028", 8, "西南", 4), City("湖北省", "武汉市", "4201", "027", 8, "华中", 4),
    City("陕西省", "西安市", "6101", "029", 8, "西北", 3), City("湖南省", "长沙市", "4301", "0731", 8, "华中", 3),
    City("河南省", "郑州市", "4101", "0371", 8, "华中", 3), City("山东省", "济南市", "3701", "0531", 8, "华北", 2),
    City("山东省", "青岛市", "3702", "0532", 8, "华北", 3), City("福建省", "厦门市", "3502", "0592", 7, "华南", 2),
    City("福建省", "福州市", "3501", "0591", 8, "华南", 2), City("安徽省", "合肥市", "3401", "0551", 8, "华东", 2),
    City("辽宁省", "沈阳市", "2101", "024", 8, "华北", 2), City("辽宁省", "大连市", "2102", "0411", 8, "华北", 2),
    City("云南省", "昆明市", "5301", "0871", 8, "西南", 1), City("江西省", "南昌市", "3601", "0791", 8, "华中", 1),
    City("河北省", "石家庄市", "1301", "0311", 8, "华北", 1), City("黑龙江省", "哈尔滨市", "2301", "0451", 8, "华北", 1),
    City("吉林省", "长春市", "2201", "0431", 8, "华北", 1), City("贵州省", "贵阳市", "5201", "0851", 8, "西南", 1),
    City("广西壮族自治区", "南宁市", "4501", "0771", 7, "华南", 1), City("山西省", "太原市", "1401", "0351", 7, "华北", 1),
]

# ---------------------------------------------------------------- titles (customer side)
# (title, seniority, aliases seen in other sources); seniority as in domain-notes section 4.
TOP_TITLES = [("董事长", "owner", ("董事长兼总经理", "董事长")), ("总经理", "cxo", ("总经理", "GM")),
              ("总裁", "cxo", ("总裁", "CEO"))]
TITLES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "cxo": [("财务总监", ("CFO", "首席财务官")), ("CIO", ("首席信息官", "信息总监")), ("首席风险官", ("CRO",)),
            ("首席运营官", ("COO",))],
    "vp": [("副总经理", ("副总",)), ("副总裁", ("VP",)), ("财务副总裁", ("副总裁（财务）",))],
    "director": [("采购总监", ("采购部总监",)), ("运营总监", ("运营部总监",)), ("财务部部长", ("财务部长",)),
                 ("信息部部长", ("信息技术部部长",)), ("资金部总监", ("资金总监",)), ("供应链总监", ("供应链部总监",))],
    "manager": [("财务经理", ("财务部经理",)), ("采购经理", ("采购部经理",)), ("IT经理", ("信息部经理",)),
                ("项目经理", ("PM",)), ("资金主管", ("资金部主管",)), ("会计主管", ("主管会计",)),
                ("行政经理", ("行政部经理",))],
    "senior": [("高级会计", ("高级会计师",)), ("高级工程师", ("高工",)), ("高级采购专员", ("高级采购",)),
               ("高级财务分析师", ("财务分析师",))],
    "entry": [("财务专员", ("财务",)), ("采购专员", ("采购",)), ("出纳", ("出纳员",)), ("行政助理", ("助理",)),
              ("总经理助理", ("总助",)), ("会计", ("会计员",))],
}
SENIORITY_WEIGHTS = [("cxo", 7), ("vp", 10), ("director", 18), ("manager", 30), ("senior", 14), ("entry", 21)]
SINGLETON_TITLES = {"财务总监", "CIO", "首席风险官", "首席运营官", "财务副总裁"}

# ---------------------------------------------------------------- the firm (WeCom side)
FIRM_WORDS = ["供应链金融服务", "融资租赁", "商业保理", "金融信息服务", "资产管理"]
SALES_REGIONS = {
    "华东": ("East China", ["上海", "杭州", "南京", "苏州", "宁波", "合肥"]),
    "华南": ("South China", ["深圳", "广州", "厦门", "福州", "佛山"]),
    "华北": ("North China", ["北京", "天津", "青岛", "济南", "大连"]),
    "华中": ("Central China", ["武汉", "长沙", "郑州", "南昌"]),
    "西南": ("Southwest", ["成都", "重庆", "昆明", "贵阳"]),
    "西北": ("Northwest", ["西安"]),
}
CN_NUMERALS = "一二三四五六七八九十"
MEMBER_POSITIONS = {
    "sales": [("客户经理", 45), ("高级客户经理", 20), ("销售代表", 25), ("销售助理", 10)],
    "service": [("客服专员", 55), ("高级客服专员", 20), ("客户成功经理", 25)],
    "marketing": [("市场专员", 50), ("品牌经理", 25), ("活动策划", 25)],
}
LEADER_POSITIONS = {"root": "总经理", "sales": "销售总监", "service": "客户服务总监", "marketing": "市场总监",
                    "region": "大区经理", "sales_team": "销售经理", "service_team": "客服主管"}

CORP_TAG_GROUPS = [
    ("客户等级", ["A类", "B类", "C类"]),
    ("客户阶段", ["初次接触", "需求确认", "方案报价", "已签约"]),
    ("关注产品", ["供应链金融", "应收账款保理", "融资租赁", "票据贴现", "跨境结算"]),
]
STATES = ["", "", "", "expo2026", "webinar", "scf_forum", "website", "referral"]

# ---------------------------------------------------------------- events
WEB_PAGES = [("/", "首页"), ("/products/scf", "供应链金融"), ("/products/factoring", "应收账款保理"),
             ("/products/leasing", "融资租赁"), ("/products/bills", "票据服务"), ("/cases", "客户案例"),
             ("/about", "关于我们"), ("/news/2026-industry-report", "2026行业报告发布"),
             ("/resources", "资料下载"), ("/contact", "联系我们"), ("/pricing", "服务费率")]
WHITEPAPERS = ["2026供应链金融白皮书", "中小企业融资指南", "应收账款管理实务", "跨境结算合规手册"]
FORMS = ["contact_us", "trial_apply", "webinar_signup", "quote_request"]
SEARCH_WORDS = ["保理", "融资租赁", "供应链金融", "票据贴现", "费率", "额度", "放款时间"]
BUTTONS = ["apply_now", "consult", "download", "call_back", "learn_more"]
APP_SCREENS = ["home", "products", "apply", "my_account", "messages", "loan_detail"]
MINI_PAGES = ["pages/index/index", "pages/product/detail", "pages/apply/form", "pages/article/detail"]
REFERRERS = ["https://www.baidu.com/", "https://www.so.com/", "https://cn.bing.com/", "", "", "https://mp.weixin.qq.com/"]
UAS = {
    "web": [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.5359.95 Safari/537.36 QIHU 360SE",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN",
        "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220099 MMWEBSDK/20240404 MicroMessenger/8.0.49.2600(0x2800313B) WeChat/arm64 Weixin NetType/5G Language/zh_CN ABI/arm64",
    ],
    "app": [
        "FinApp/3.2.1 (iPhone; iOS 17.5.1; Scale/3.00)",
        "FinApp/3.2.0 (Android 14; HUAWEI ALN-AL00)",
        "FinApp/3.1.8 (Android 13; Xiaomi 23013RK75C)",
        "FinApp/3.2.1 (iPad; iPadOS 17.4; Scale/2.00)",
    ],
    "miniapp": [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.48(0x18003030) NetType/WIFI Language/zh_CN miniProgram/wx3f8a9c2d1e5b7a60",
        "Mozilla/5.0 (Linux; Android 13; PGT-AN10 Build/HONORPGT-AN10; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160083 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F36) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64 miniProgram/wx3f8a9c2d1e5b7a60",
    ],
}


# ---------------------------------------------------------------- region codes (stdnum's data)
@dataclass(frozen=True)
class Region:
    code: str                             # six digits
    name: str                             # county name today ("" if abolished)
    spans: tuple[tuple[int, int], ...]    # years the code was assigned (inclusive); (0, 9999) = always


@functools.cache
def regions() -> list[Region]:
    """County-level codes from python-stdnum's cn/loc.dat with the years they were in use.

    `stdnum.cn.ric` rejects an ID whose region code was not assigned in the birth year, so ID
    numbers must draw from here, checking the span (Faker's ID numbers often fail that check).
    """
    path = Path(stdnum.cn.__file__).with_name("loc.dat")
    out: list[Region] = []
    province = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            province = line.split()[0]
            continue
        code4, rest = line.strip().split(" ", 1)
        value = rest.split("=", 1)[1].strip('"')
        spans, current = [], ""
        for part in value.split(","):
            if part.startswith("["):
                years, name = part[1:].split("]", 1)
                start, end = years.split("-")
                spans.append((int(start or 0), int(end or 9999)))
                current = name if not end else current
            else:
                spans.append((0, 9999))
                current = part
        out.append(Region(province + code4, current, tuple(spans)))
    return out


def region_valid(region: Region, year: int) -> bool:
    return any(start <= year <= end for start, end in region.spans)
